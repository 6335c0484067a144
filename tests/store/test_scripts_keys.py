"""Every Lua script of the Redis store (the video jobs', the limits', the config
versions' and the request log's) touches only the keys it is given in KEYS, as
Redis Cluster asks of a script. Checked on one Redis: a MONITOR connection
records every command while the store's operations run each script, and Redis
itself (COMMAND GETKEYS) says which arguments of each command a script ran are
keys."""
from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from urllib.parse import urlsplit

import redis

from gateway.spend import today
from gateway.store import ConfigVersion, FileRecord, Hold, JobRecord, LedgerEntry, Retention, Settlement
from gateway.store.configs import KEPT
from gateway.store.redis import RedisStore, batches, configs, files, jobs_lua, limits_lua, requests
from gateway.store.redis.base import Script
from tests.store.records import created, delivery, finished, job
from tests.store.test_limits import admission, lease, rpm, tpm
from tests.store.test_requests import now_ms, record

SCRIPTS = {Script(text).sha: name for name, text in vars(jobs_lua).items()
           if name.isupper() and not name.startswith("_") and isinstance(text, str)}
SCRIPTS |= {Script(configs.PUT).sha: "configs.PUT", Script(configs.SEED).sha: "configs.SEED",
            Script(limits_lua.BATCH).sha: "limits.BATCH", Script(requests._ADD).sha: "requests._ADD",
            Script(batches.PUT).sha: "batches.PUT", Script(batches.STOP).sha: "batches.STOP",
            Script(files.CREATE).sha: "files.CREATE"}
_END = "monitor-end-marker"
_PROBE = "return redis.call('EXISTS', KEYS[1])"
_PROBE_KEY = b"monitor-probe-key"
_LINE = re.compile(r'^\+?[\d.]+ \[\d+ ([^\]]+)\] (.*)$')
_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "a": b"\a", "b": b"\b"}


def _unquote(text: str) -> bytes:
    """An argument as MONITOR quotes it (sdscatrepr), back to its bytes."""
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] != "\\":
            out += text[i].encode()
            i += 1
        elif text[i + 1] == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            out += _ESCAPES.get(text[i + 1], text[i + 1].encode())
            i += 2
    return bytes(out)


class Monitor:
    """MONITOR on a raw socket, read on a thread until the end marker comes by."""

    def __init__(self, host: str, port: int) -> None:
        self.lines: list[tuple[str, list[bytes]]] = []     # (client, args)
        self._failed: BaseException | None = None
        self._sock = socket.create_connection((host, port))
        self._sock.sendall(b"MONITOR\r\n")
        self._file = self._sock.makefile("rb")
        assert self._file.readline() == b"+OK\r\n"
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self._file:
                m = _LINE.match(raw.decode("ascii").rstrip("\r\n"))
                assert m, raw
                args = [_unquote(a) for a in _ARG.findall(m.group(2))]
                if [args[0].lower(), *args[1:2]] == [b"echo", _END.encode()]:
                    return
                self.lines.append((m.group(1), args))
        except BaseException as e:      # raised again by stop(), on the test's thread
            self._failed = e

    def stop(self, client: redis.Redis) -> None:
        client.echo(_END)
        self._thread.join(10)
        assert not self._thread.is_alive()
        self._sock.close()
        if self._failed is not None:
            raise self._failed


def _scripts_run(lines: list[tuple[str, list[bytes]]]) -> list[tuple[bytes, list[bytes], list[list[bytes]]]]:
    """(sha, keys, the commands it ran) per script run. A script's commands come as one
    run of `lua` lines next to its EVAL/EVALSHA: before them on Redis 7.0, and maybe after
    elsewhere; the probe script, run first, says which."""
    groups: list[tuple[int, list[list[bytes]]]] = []   # (index of the line before the group, commands)
    for i, (client, args) in enumerate(lines):
        if client == "lua":
            if groups and groups[-1][0] + len(groups[-1][1]) == i - 1:
                groups[-1][1].append(args)
            else:
                groups.append((i - 1, [args]))
    probe = next(i for i, (_, a) in enumerate(lines) if a[0].lower() == b"eval" and a[1] == _PROBE.encode())
    evals_first = lines[probe + 1][1] == [b"EXISTS", _PROBE_KEY]
    runs = []
    for before, commands in groups:
        at = before if evals_first else before + len(commands) + 1
        client, args = lines[at]
        name = args[0].lower()
        assert client != "lua" and name in (b"eval", b"evalsha"), (lines[at], commands)
        sha = Script(args[1].decode()).sha.encode() if name == b"eval" else args[1]
        runs.append((sha, args[3:3 + int(args[2])], commands))
    return runs


def _keys_of(connection: redis.Connection, command: list[bytes]) -> list[bytes]:
    """The keys of `command`, as Redis finds them (bytes: redis-py's own reading decodes)."""
    connection.send_command("COMMAND", "GETKEYS", *command)
    try:
        return connection.read_response()
    except redis.ResponseError as e:
        # PUBLISH names a channel; TIME (a command of one word) takes no arguments at all
        assert "no key arguments" in str(e) or len(command) == 1, (command, e)
        return []


async def _every_job_operation(store: RedisStore) -> None:
    now = time.time()
    jobs = await created(store, 4)
    await store.jobs.create(job(expires_at=int(now - 50)), "sora")
    assert await store.jobs.delete(jobs[3].id) == jobs[3]
    page, more = await store.jobs.page("alice", None, 2, "desc")
    assert len(page) == 2 and more

    first = await store.jobs.claim("sora", "w1", 0.05)
    assert first is not None and first.job_id == jobs[0].id
    await asyncio.sleep(0.15)                                    # its lease lapses: taken over
    second = await store.jobs.claim("sora", "w2", 0.05)         # its lease decides what lapsed
    assert second is not None and second.job_id == jobs[0].id and second.attempt == 2
    assert not await store.jobs.renew(first, 30)
    assert await store.jobs.renew(second, 30)
    running = JobRecord(jobs[0].id, "alice", "in_progress", b"{}")
    assert await store.jobs.update(running, token=second.token)
    sent = [delivery(jobs[0], 1, now), delivery(jobs[0], 2, now)]
    assert await store.jobs.update(finished(jobs[0], expires_at=int(now - 100)), second.token, sent)
    await store.jobs.done(second)

    assert await store.jobs.update(finished(jobs[1], "failed"))     # finished while queued: skipped
    third = await store.jobs.claim("sora", "w3", 30)
    assert third is not None and third.job_id == jobs[2].id

    [a, b] = await store.jobs.outbox_claim(now, 10, 30)
    a.status = "delivered"
    await store.jobs.outbox_save(a)
    assert await store.jobs.expiring(now, 10) != []
    assert await store.jobs.forget(now, 10) == [jobs[0].id]
    assert await store.jobs.deliveries(jobs[0].id) == []
    assert await store.jobs.delete(jobs[2].id) is not None     # claimed: its entry goes too


async def _every_other_operation(store: RedisStore) -> None:
    """The limits' (windows, a lease, a budget hold, settled with a ledger row), the
    config versions' (past KEPT, so old ones go), the request log's, batch results' and files' scripts."""
    hold = Hold(f"budget:alice:{today()}:{today()}", 10**12, 1000)
    verdict = await store.limits.admit(admission(rpm(10), tpm(1000, 50), lease=lease("l1"), hold=hold))
    assert verdict.allowed
    await store.limits.settle(Settlement(corrections=[(tpm(1000, 50), verdict.at, -20)], lease=lease("l1"),
                                         hold=hold, spent_nano=500,
                                         entry=LedgerEntry(today(), "alice", "m", "p", cost_nano=500),
                                         given=verdict.given))
    await store.limits.flush()
    assert await store.configs.seed(ConfigVersion(1, time.time(), "file", "seeded", "", b"{}"))
    for n in range(1, KEPT + 2):
        assert await store.configs.put(ConfigVersion(0, time.time(), "admin", str(n), "", b"{}"), n) == n + 1
    assert len(await store.configs.versions(KEPT + 5)) == KEPT
    await store.requests.add([record(n, now_ms()) for n in range(3)], Retention(7, 1000))
    assert await store.batches.put("batch_1", 0, True, b"{}", 5, 1, 2)
    await store.files.create(FileRecord("file-1", "key_1", "batch", "in.jsonl", 10, 1, expires_at=100, lines=1,
                                        endpoint="/v1/embeddings"))
    assert await store.batches.stop("batch_1", "cancel", 1) == ("cancel", 1)


async def test_every_script_touches_only_its_keys(redis_url):
    u = urlsplit(redis_url)
    client = redis.Redis(host=u.hostname, port=u.port)
    monitor = Monitor(u.hostname or "127.0.0.1", u.port or 6379)
    try:
        client.eval(_PROBE, 1, _PROBE_KEY)
        store = RedisStore(redis_url, timeout_s=2.0)
        await store.start()
        try:
            await _every_job_operation(store)
            await _every_other_operation(store)
        finally:
            await store.close()
    finally:
        monitor.stop(client)

    runs = _scripts_run(monitor.lines)
    ran = {SCRIPTS[sha.decode()] for sha, _, _ in runs if sha.decode() in SCRIPTS}
    assert ran == set(SCRIPTS.values())
    connection = redis.Connection(host=u.hostname or "127.0.0.1", port=u.port or 6379)
    checked = 0
    for sha, given, commands in runs:
        for command in commands:
            touched = _keys_of(connection, command)
            assert set(touched) <= set(given), (SCRIPTS.get(sha.decode(), sha), command, given)
            checked += len(touched)
    assert checked > 50
    connection.disconnect()
    client.close()


async def test_the_scripts_act_only_on_what_still_holds(redis_url):
    """What the store read before a script (the entry a claim took, the deliveries
    due, a job's key, queue and deliveries) may change before it runs: the script
    checks again and does less, never the wrong thing."""
    u = urlsplit(redis_url)
    r = redis.Redis(host=u.hostname, port=u.port)
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    try:
        now = time.time()
        [j] = await created(store, 1)
        first = await store.jobs.claim("sora", "w1", 0.05)
        await asyncio.sleep(0.15)
        # w2 takes the lapsed entry (step one), then w1 renews before w2 claims the job.
        entry, job_id, attempt = r.eval(jobs_lua.CLAIM_ENTRY, 1, "gw:queue:sora", "w2", 50)
        assert (entry.decode(), job_id.decode(), attempt) == (first.entry, j.id, 2)
        assert await store.jobs.renew(first, 30)
        assert r.eval(jobs_lua.CLAIM_JOB, 2, "gw:job:" + j.id, "gw:queue:sora",
                      "w2", "t2", "sora", entry) == b"lost"
        assert await store.jobs.update(JobRecord(j.id, j.key, "in_progress", b"{}"), token=first.token)
        assert await store.jobs.renew(first, 30) and await store.jobs.queue_depth("sora") == 1

        # Deliveries read as due, then taken by another sender: not taken twice.
        sent = [delivery(j, 1, now), delivery(j, 2, now)]
        assert await store.jobs.update(finished(j, expires_at=int(now - 100)), first.token, sent)
        due = r.zrangebyscore("gw:outbox", "-inf", repr(now))
        assert len(await store.jobs.outbox_claim(now, 10, 30)) == 2
        assert r.eval(jobs_lua.OUTBOX_CLAIM, 3, "gw:outbox", *(b"gw:delivery:" + d for d in due),
                      repr(now), repr(now + 30), *due) == []

        # A job forgotten with a stale read of its deliveries (one made since): left for next time.
        assert r.eval(jobs_lua.FORGET, 6, "gw:videos:records", "gw:outbox", "gw:videos:expiry",
                      "gw:job:" + j.id, "gw:videos:alice", "gw:deliveries:" + j.id,
                      repr(now), j.id, 1, "alice", 0) == []
        assert await store.jobs.get(j.id) is not None
        # A record whose HASH is gone is forgotten all the same.
        r.zadd("gw:videos:records", {"video_lost": 1})
        assert await store.jobs.forget(now, 10) == ["video_lost", j.id]        # by expires_at
        assert await store.jobs.get(j.id) is None and await store.jobs.deliveries(j.id) == []
        assert r.zcard("gw:videos:records") == 0 and r.zcard("gw:outbox") == 0

        # A delete told the wrong queue does nothing and asks to be read again.
        [k] = await created(store, 1)
        assert r.eval(jobs_lua.DELETE, 5, "gw:job:" + k.id, "gw:videos:expiry", "gw:videos:alice",
                      "gw:videos:records", "gw:queue:other", k.id, "alice", "other") == 0
        assert await store.jobs.delete(k.id) == k and await store.jobs.queue_depth("sora") == 1
    finally:
        await store.close()
        r.close()
