"""What every part of the Redis store shares: a pool of connections with the
key prefix, Lua scripts called by their SHA, and Redis's failures turned into
`StoreDown`.

A Redis that errs, or answers slower than the pool's timeout, raises
`StoreDown` (the caller applies its policy); nothing is retried, because a
retried admission might be charged twice and a retried create queue a job
twice. Broken connections are replaced as they are next taken from the pool,
so service resumes by itself when Redis is back.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from gateway.store.base import StoreDown
from gateway.store.redis.cluster import tagged
from gateway.store.redis.pipe import Pipe, ReplyError


class Script:
    """A Lua script, called by its SHA (Redis keeps the text once loaded)."""
    __slots__ = ("text", "sha")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


_KEPT_WAIT_MS = 1000    # a replica that has not caught up by then is itself in trouble: go on


class Pool:
    """A client over a bounded pool of connections to one Redis (or, `cluster`, to each
    node of a Redis Cluster), and the prefix every key goes under."""

    def __init__(self, url: str, prefix: str, timeout_s: float, connections: int, name: str,
                 cluster: bool = False) -> None:
        self.prefix = prefix
        self.cluster = cluster
        # Typed loosely on purpose: redis-py types answers as bytes | str whatever the client's
        # decode_responses; this client never decodes, so every answer here is bytes.
        self.redis: Any
        self._url = url
        self._options = dict(max_connections=connections, timeout=timeout_s, socket_timeout=timeout_s,
                             socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0), client_name=name,
                             protocol=2)
        self._nodes: dict[str, Any] = {}     # Redis Cluster: a client per node, for transactions
        if cluster:
            self.redis = _cluster_client(url, timeout_s, connections, name)
            return
        # A bounded pool that waits (up to the timeout) for a free connection: a burst
        # queues briefly rather than opening a connection per request or failing open.
        # RESP2: with RESP3, redis-py 8 turns on maintenance notifications, which skip its
        # check for connections the server closed, so each one left over from a Redis
        # restart would fail one request (seen in tests/test_limits_replicas.py).
        self.redis = Redis.from_pool(BlockingConnectionPool.from_url(url, **self._options))

    def part(self, tag: str) -> Pool:
        """This pool, for a part of the store whose keys must share a hash slot on Redis
        Cluster (cluster.py): the same connections, the keys under `<prefix>{tag}:`.
        On a single Redis, the pool itself: key names do not change."""
        if not self.cluster:
            return self
        view = copy.copy(self)
        view.prefix = tagged(self.prefix, tag)
        return view

    async def transaction(self, key: str, fill: Callable[[Any], object]) -> list[Any]:
        """The replies to the commands `fill` puts in a MULTI/EXEC pipeline, run at once.
        On Redis Cluster every key they name shares `key`'s slot, and the transaction goes
        on a connection to the node serving it. (redis-py's cluster transactions run each
        call on a thread of their own, blocking the event loop: not used.)"""
        with talking():
            if not self.cluster:
                trip = self.redis.pipeline(transaction=True)
                fill(trip)
                return await trip.execute()
            await self.redis.initialize()       # a client that has not met the cluster yet knows no slots
            node = self.redis.get_node_from_key(key)
            client = self._nodes.get(node.name)
            if client is None:
                client = self._nodes[node.name] = Redis.from_pool(BlockingConnectionPool.from_url(
                    _at(self._url, node.host, node.port), **self._options))
            trip = client.pipeline(transaction=True)
            fill(trip)
            try:
                return await trip.execute()
            except Exception:
                # moved, or its node is gone: the next command of any kind asks the cluster again
                _ask_for_slots(self.redis)
                raise

    async def run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """One EVALSHA: one round trip, atomic on the server."""
        with talking():
            try:
                return await self.redis.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:      # a restarted or flushed Redis forgot the script
                await self.redis.script_load(script.text)
                return await self.redis.evalsha(script.sha, len(keys), *keys, *args)

    async def run_kept(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """`run`, and on Redis Cluster its answer only once a replica of the primary has the
        write too (WAIT, on the same connection): a primary that dies just after cannot take
        it with it. (A shard without replicas has nowhere to keep a copy: `run` alone.)"""
        if not self.cluster:
            return await self.run(script, keys, args)
        with talking():
            await self.redis.initialize()       # a client that has not met the cluster yet knows no slots
            slot = self.redis.keyslot(keys[0])
            nodes = self.redis.nodes_manager.slots_cache.get(slot) or []
            if len(nodes) < 2:
                return await self.run(script, keys, args)
            trip = self.redis.pipeline(transaction=False)
            trip.eval(script.text, len(keys), *keys, *args)
            trip.execute_command("WAIT", 1, _KEPT_WAIT_MS, target_nodes=nodes[0])
            value, _ = await trip.execute()
        return value

    async def load(self, script: Script) -> None:
        with talking():
            await self.redis.script_load(script.text)

    async def close(self) -> None:
        await self.redis.aclose()
        for client in self._nodes.values():
            await client.aclose()


def _at(url: str, host: str, port: int) -> str:
    """`url` (its scheme, credentials and options) for the node at host:port."""
    u = urlsplit(url)
    auth = u.netloc.rpartition("@")[0]
    host = f"[{host}]" if ":" in host else host
    return urlunsplit(u._replace(netloc=(auth + "@" if auth else "") + f"{host}:{port}"))


# After an error, the cluster's slots are asked for again at most this often. redis-py 8.2
# added the bound, one second by default: a replica promoted just after a refresh found the
# dead primary still listed would go unused for up to that second, each command to its slots
# failing meanwhile. A refresh is one CLUSTER SLOTS, and one runs at a time per client.
SLOTS_ASKED_EVERY_S = 0.05
_REFRESH_BOUND = "topology_refresh_min_interval" in inspect.signature(RedisCluster.__init__).parameters


def _cluster_client(url: str, timeout_s: float, connections: int, name: str) -> Any:
    """redis-py's cluster client: commands go to the node serving their keys' slot, MOVED
    and ASK are followed (nothing ran where they came from), and a refused or broken
    connection is not retried (it raises, so `talking` makes it StoreDown) but makes the
    next command ask the cluster for its slots again (within SLOTS_ASKED_EVERY_S)."""
    bound = {"topology_refresh_min_interval": SLOTS_ASKED_EVERY_S} if _REFRESH_BOUND else {}
    return RedisCluster.from_url(url, max_connections=connections, socket_timeout=timeout_s,
                                 socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
                                 require_full_coverage=False, client_name=name, protocol=2, **bound)


def _ask_for_slots(client: Any) -> None:
    """Have `client` (redis-py's cluster client) ask the cluster for its slots before its
    next command: after a transaction this module ran on a node's own connection failed."""
    request = getattr(client, "_request_refresh", None)     # redis-py 8.2 and later
    if request is not None:
        request()
    else:
        client._initialize = True


async def run_encoded(pipe: Pipe, script: Script, evalsha: bytes) -> Any:
    """One EVALSHA of `script`, already in RESP, on the pipelined connection (loading
    the script when Redis forgot it)."""
    try:
        return await pipe.call_encoded(evalsha)
    except ReplyError as e:
        if not str(e).startswith("NOSCRIPT"):
            raise StoreDown(f"Redis: {e}") from None
    try:
        await pipe.call("SCRIPT", "LOAD", script.text)
        return await pipe.call_encoded(evalsha)
    except ReplyError as e:
        raise StoreDown(f"Redis: {e}") from None


@contextmanager
def talking() -> Iterator[None]:
    """Whatever goes wrong while talking to Redis is Redis being down: redis-py's own
    errors, and what slips past them (uvloop raises RuntimeError on a closed transport).

    And a cancellation that came meanwhile stays one. redis-py writes each command
    through asyncio.wait_for, which on Python 3.11 returns the write's result and drops a
    cancellation that lands as the write completes. Then a loop stopped by cancelling it
    (a queue's taker, a worker's heartbeat) would run on, and a shutdown waiting for it
    would wait for ever."""
    task = asyncio.current_task()
    asked = task.cancelling() if task is not None else 0
    try:
        yield
    except StoreDown:
        _still_cancelled(task, asked)
        raise
    except Exception as e:
        _still_cancelled(task, asked)
        raise StoreDown(f"Redis: {e!r}") from e
    _still_cancelled(task, asked)


def _still_cancelled(task: asyncio.Task[Any] | None, asked: int) -> None:
    if task is not None and task.cancelling() > asked:
        raise asyncio.CancelledError
