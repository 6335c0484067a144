"""A real Redis Cluster for tests: six `redis-server` processes on free loopback
ports (three primaries, each with one replica), in temp dirs, with no persistence.
A node can be killed as a crash, and `wait_promoted` waits out the failover that
follows; a killed node stays dead for the rest of the test."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

from tests.harness import free_port

SLOTS = 16384


class RedisCluster:
    def __init__(self, node_timeout_ms: int = 1000) -> None:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            pytest.skip("redis-server/redis-cli are not installed (.ci/run installs them)")
        # Twelve distinct ports: a client port and a bus port per node. The bus port is
        # set explicitly, since the default (port + 10000) may be taken or past 65535.
        picked: list[int] = []
        while len(picked) < 12:
            if (port := free_port()) not in picked:
                picked.append(port)
        self.ports, bus_ports = picked[:6], picked[6:]
        self.dir = tempfile.mkdtemp(prefix="gateway-redis-cluster-")
        self._procs: dict[int, subprocess.Popen] = {}
        try:
            for port, bus in zip(self.ports, bus_ports, strict=True):
                node_dir = f"{self.dir}/{port}"
                os.mkdir(node_dir)
                self._procs[port] = subprocess.Popen(
                    [binary, "--port", str(port), "--cluster-port", str(bus),
                     "--bind", "127.0.0.1", "--dir", node_dir,
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", str(node_timeout_ms),
                     "--cluster-require-full-coverage", "no",
                     # A replica however stale may be promoted: tests kill at will.
                     "--cluster-replica-validity-factor", "0",
                     "--save", "", "--appendonly", "no", "--loglevel", "warning",
                     # A replica's first sync would otherwise wait 5 s for more replicas.
                     "--repl-diskless-sync-delay", "0"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._wait(lambda: all(self._call(p, "PING") for p in self.ports), 10, "start")
            created = subprocess.run(
                [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                 "--cluster-replicas", "1", "--cluster-yes"],
                capture_output=True, text=True, timeout=20)
            if created.returncode != 0:  # redis-cli says why on stdout, not stderr
                raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")
            # About 1 s: a new primary holds cluster_state:fail until 2 s after its
            # start (Redis's fixed rejoin delay), and redis-cli spent 1 s of that.
            self._wait(self._settled, 20, "form")
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """A seed any cluster client can start from: the first primary still alive
        (the same URL all along, unless a test kills that node)."""
        return f"redis://127.0.0.1:{self.primaries()[0]}/0"

    @property
    def live(self) -> list[int]:
        return [p for p in self.ports if p in self._procs]

    def primaries(self) -> list[int]:
        """Live nodes that are primaries now, in their own words (ROLE)."""
        return [p for p in self.live if self._call(p, "ROLE")[0] == "master"]

    def replica_of(self, port: int) -> int:
        for p in self.live:
            role = self._call(p, "ROLE")
            if role[0] == "slave" and int(role[2]) == port:
                return p
        raise LookupError(f"no live replica of {port}")

    def primary_for_key(self, key: str) -> int:
        seed = self.live[0]
        return self._slot_owner(seed, self._call(seed, "CLUSTER", "KEYSLOT", key))

    def kill(self, port: int) -> None:
        """Dies at once, as a crashed node would (no clean shutdown)."""
        proc = self._procs.pop(port, None)
        if proc is not None:
            proc.kill()
            proc.wait(5)

    def wait_replicated(self, primary: int, timeout: float = 5) -> None:
        """Until every replica of `primary` has all it wrote (replication is asynchronous:
        a primary killed sooner takes its last writes with it)."""
        def caught_up() -> bool:
            role = self._call(primary, "ROLE")      # ["master", offset, [[host, port, offset], ...]]
            return bool(role[2]) and all(int(r[2]) >= int(role[1]) for r in role[2])
        self._wait(caught_up, timeout, f"replicate {primary}")

    def wait_promoted(self, old_primary: int, timeout: float = 15) -> int:
        """The port of the node now serving what the (killed) `old_primary` served,
        once every live node agrees on it and reports the cluster whole again."""
        if old_primary in self._procs:
            raise ValueError(f"{old_primary} is alive: kill it first")
        slots = self._slots_of(old_primary)
        if not slots:
            raise ValueError(f"{old_primary} serves no slots (already failed over?)")
        owners: set[int] = set()

        def promoted() -> bool:
            if not self._settled():
                return False
            owners.clear()
            owners.update(self._slot_owner(p, slots[0]) for p in self.live)
            return len(owners) == 1 and owners <= set(self.live)
        self._wait(promoted, timeout, f"fail over from {old_primary}")
        return owners.pop()

    def flush(self) -> None:
        for port in self.primaries():
            self._call(port, "FLUSHALL")

    def close(self) -> None:
        for port in list(self._procs):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _settled(self) -> bool:
        # cluster_state stays "ok" while a primary is down (full coverage is not
        # required), so insist that every slot is served by a node nobody suspects.
        for port in self.live:
            info = self._call(port, "CLUSTER", "INFO") or ""
            if "cluster_state:ok" not in info or f"cluster_slots_ok:{SLOTS}" not in info:
                return False
            role = self._call(port, "ROLE")
            # Until its first sync is done, a replica acknowledges no `WAIT` and has
            # nothing to take over with.
            if role[0] == "slave" and role[3] != "connected":
                return False
        return True

    def _slots_of(self, port: int) -> list[int]:
        # Asked of a survivor: until the failover, its map still names the dead node.
        return [lo for lo, hi, primary, *_ in self._call(self.live[0], "CLUSTER", "SLOTS")
                if int(primary[1]) == port]

    def _slot_owner(self, asked: int, slot: int) -> int:
        for lo, hi, primary, *_ in self._call(asked, "CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return int(primary[1])
        raise LookupError(f"slot {slot} is not served")

    @staticmethod
    def _call(port: int, *args):
        """One command on a short-lived connection; None if the node does not answer."""
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)
        try:
            return client.execute_command(*args)
        except redis.ConnectionError:
            return None
        finally:
            client.close()

    @staticmethod
    def _wait(done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis cluster did not {what} within {timeout}s")
            time.sleep(0.05)
