"""What only the Redis store has: one round trip each way, Redis's own clock,
its key prefix, and how it behaves while Redis is gone or slow."""
from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from gateway.store import Admission, Hold, Lease, LedgerEntry, ResponseRecord, Settlement, StoreDown, Window
from gateway.store.redis import RedisStore
from gateway.store.redis.limits import LEDGER_FLUSH_S
from tests.harness import free_port
from tests.redis_server import RedisServer

TOKENS = Window("tokens", "tpm:key:alice", 1000, 60, 100)


def full_admission() -> Admission:
    return Admission([Window("requests", "rpm:key:alice", 10, 60, 1), TOKENS],
                     Lease("concurrent:key:alice", 4, "lease-1", 600),
                     Hold("budget:alice:2026-11-01:2026-11-30", 10**9, 5000), time.time())


def full_settlement(verdict) -> Settlement:
    a = full_admission()
    return Settlement([(TOKENS, verdict.at, -60)], a.lease, a.hold, 4000,
                      LedgerEntry("2026-11-25", "alice", "m", "p", 1, 10, 30, 0, 4000))


async def test_one_round_trip_to_admit_and_one_to_settle(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    seen: list[dict] = []
    monitor_client = Redis.from_url(redis_url)
    try:
        async with monitor_client.monitor() as m:
            async def watch():
                while True:
                    seen.append(await m.next_command())
            watching = asyncio.create_task(watch())
            verdict = await store.limits.admit(full_admission())
            await store.limits.settle(full_settlement(verdict))
            await store.limits.admit(full_admission())     # the budget period is tracked now: still one
            await asyncio.sleep(LEDGER_FLUSH_S / 4)     # MONITOR shows them; the ledger's flush comes later
            watching.cancel()
    finally:
        await monitor_client.aclose()
        await store.close()
    assert verdict.allowed
    sent = [c["command"].split()[0].upper() for c in seen if c.get("client_type") != "lua"]
    assert sent == ["EVALSHA", "EVALSHA", "EVALSHA"]


async def test_one_round_trip_per_stored_response_call(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.ping()          # the connection is set up (CLIENT SETNAME) before watching
    seen: list[dict] = []
    monitor_client = Redis.from_url(redis_url)
    try:
        async with monitor_client.monitor() as m:
            async def watch():
                while True:
                    seen.append(await m.next_command())
            watching = asyncio.create_task(watch())
            await store.responses.put(ResponseRecord("resp_1", "key_a", 0, b"{}"), 60)
            await store.responses.get("resp_1")
            await store.responses.delete("resp_1")
            await asyncio.sleep(0.2)
            watching.cancel()
    finally:
        await monitor_client.aclose()
        await store.close()
    sent = [c["command"].split()[0].upper() for c in seen]
    # a put is one MULTI/EXEC block, sent as one pipeline
    assert sent == ["MULTI", "HSET", "PEXPIRE", "EXEC", "HMGET", "DEL"]


async def test_usage_is_one_round_trip_that_writes_nothing(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    seen: list[dict] = []
    monitor_client = Redis.from_url(redis_url)
    try:
        verdict = await store.limits.admit(full_admission())
        await store.limits.settle(full_settlement(verdict))
        await store.limits.admit(full_admission())
        writes = (await monitor_client.info("persistence"))["rdb_changes_since_last_save"]
        async with monitor_client.monitor() as m:
            async def watch():
                while True:
                    seen.append(await m.next_command())
            watching = asyncio.create_task(watch())
            use = await store.limits.usage(full_admission().windows, ["concurrent:key:alice"])
            await asyncio.sleep(0.1)
            watching.cancel()
        assert (await monitor_client.info("persistence"))["rdb_changes_since_last_save"] == writes
    finally:
        await monitor_client.aclose()
        await store.close()
    assert use.windows == [2, 100 - 60 + 100] and use.leases == [1]
    sent = [c["command"].split()[0].upper() for c in seen]
    # one MULTI/EXEC block, sent as one pipeline: Redis's clock and the keys read at one instant
    assert sent == ["MULTI", "TIME", "HGETALL", "HGETALL", "ZCARD", "ZRANGE", "EXEC"]


async def test_usage_reads_each_window_as_admit_counts_it(redis_url):
    """Window HASHes in each state ADMIT's `counted` tells apart, made by hand: usage says what
    a probe admission (charging nothing) then counts. Hour windows: a bucket is a minute."""
    hour = 3600
    key = "gw:vph:key:alice"
    probe = Window("videos", "vph:key:alice", 1000, hour, 0)
    store = RedisStore(redis_url, timeout_s=2.0)
    try:
        async with Redis.from_url(redis_url) as r:
            def states(c: int) -> list[tuple[dict, int]]:
                """(the HASH, what it counts) for current bucket c."""
                return [({"n": 7, "o": c - 3, c - 3: 4, c: 3}, 7),                       # oldest still in
                        ({"n": 9, "o": c - 61, c - 61: 2, c - 60: 3, c - 10: 4}, 4),     # the oldest two left
                        ({"n": 5, "o": c - 70, c - 70: 2, c - 5: 3}, 3),                 # all it covered left
                        ({c - 2: 4, c - 100: 6}, 4),                                     # no sum kept
                        ({"n": 9, c - 1: 3, c - 59: 6}, 9),                              # no oldest mark
                        ({}, 0)]                                                         # no window at all
            for _ in range(3):
                sec, _usec = await r.time()
                current = sec // 60
                read, probed = [], []
                for fields, _counts in states(current):
                    await r.delete(key)
                    if fields:
                        await r.hset(key, mapping=fields)
                    read.append((await store.limits.usage([probe], [])).windows[0])
                    probed.append(1000 - (await store.limits.admit(Admission([probe]))).remaining[0])
                if (await r.time())[0] // 60 == current:      # no minute turned meanwhile
                    break
    finally:
        await store.close()
    expected = [counts for _, counts in states(current)]
    assert read == probed == expected


async def test_redis_clock_decides(redis_url):
    async with Redis.from_url(redis_url) as r:
        sec, usec = await r.time()
    store = RedisStore(redis_url, timeout_s=2.0)
    try:
        skewed = full_admission()
        skewed.now -= 3600           # a replica whose clock is an hour off counts in the same buckets
        verdict = await store.limits.admit(skewed)
    finally:
        await store.close()
    assert abs(verdict.at - (sec + usec / 1e6)) < 1


async def test_every_key_is_under_the_prefix(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0, prefix="tenant-a:")
    try:
        verdict = await store.limits.admit(full_admission())
        await store.limits.settle(full_settlement(verdict))
        await store.cache.put("k", b"v", 10)
        await store.responses.put(ResponseRecord("resp_1", "key_a", 0, b"{}"), 10)
        async with Redis.from_url(redis_url) as r:
            keys = await r.keys("*")
    finally:
        await store.close()
    assert keys and all(k.startswith(b"tenant-a:") for k in keys)


async def test_scripts_reload_after_redis_forgets_them(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    try:
        async with Redis.from_url(redis_url) as r:
            await r.script_flush()
        assert (await store.limits.admit(full_admission())).allowed
    finally:
        await store.close()


async def test_redis_gone_is_store_down():
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.05)
    await store.start()         # starts anyway: the limiter's policy covers an outage
    try:
        for call in (store.limits.admit(full_admission()),
                     store.limits.settle(Settlement(lease=full_admission().lease)),
                     store.cache.get("k"), store.cache.put("k", b"v", 1), store.ledger.rows("2026-11-01", "2026-11-30"),
                     store.limits.budget_spent("budget:alice:2026-11-01:2026-11-30"),
                     store.limits.usage([TOKENS], ["concurrent:key:alice"]),
                     store.responses.put(ResponseRecord("resp_1", "key_a", 0, b"{}"), 60),
                     store.responses.get("resp_1"), store.responses.delete("resp_1")):
            with pytest.raises(StoreDown):
                await call
        assert await store.ping() is False
    finally:
        await store.close()


async def test_redis_gone_is_store_down_for_jobs_configs_workers_and_secrets():
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.05)
    try:
        for call in (store.jobs.get("video_x"), store.jobs.claim("sora", "w1", 30), store.jobs.queue_depth("sora"),
                     store.jobs.outbox_claim(0, 10, 30), store.configs.latest(), store.configs.versions(10),
                     store.workers.live("sora"), store.secret("links")):
            with pytest.raises(StoreDown):
                await call
    finally:
        await store.close()


async def test_slow_redis_is_store_down_and_then_fine_again(redis_url):
    store = RedisStore(redis_url, timeout_s=0.05)
    await store.start()
    try:
        async with Redis.from_url(redis_url) as r:
            await r.execute_command("CLIENT", "PAUSE", "300", "ALL")
        began = time.monotonic()
        with pytest.raises(StoreDown):
            await store.limits.admit(full_admission())
        assert time.monotonic() - began < 0.25
        await asyncio.sleep(0.3)
        assert (await store.limits.admit(full_admission())).allowed    # no restart, no reconnect call
    finally:
        await store.close()


async def test_connections_left_over_from_a_dead_redis_are_replaced_not_failed():
    server = RedisServer()       # this test's own: it dies
    store = RedisStore(server.url, timeout_s=2.0)
    one = Admission([Window("requests", "rpm:key:alice", 1000, 60, 1)])
    try:
        await asyncio.gather(*(store.limits.admit(one) for _ in range(20)))     # 20 pooled connections
        server.kill()
        await asyncio.sleep(0.2)
        with pytest.raises(StoreDown):
            await store.limits.admit(one)
        server.start()
        verdicts = await asyncio.gather(*(store.limits.admit(one) for _ in range(20)))
        assert all(v.allowed for v in verdicts)
    finally:
        await store.close()
        server.close()


async def test_ledger_rows_settled_while_redis_is_down_are_written_when_it_is_back(caplog):
    """The flush in the background keeps its rows and tries again, less often, logging the outage
    once: no task dies with an exception nobody reads."""
    server = RedisServer()       # this test's own: it dies
    store = RedisStore(server.url, timeout_s=0.2)
    loop = asyncio.get_running_loop()
    unread: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: unread.append(context))
    try:
        await store.start()
        server.kill()
        for _ in range(3):
            await store.limits.settle(Settlement(entry=LedgerEntry("2026-11-25", "alice", "m", "p", 1, 10, 30, 0, 7)))
        await asyncio.sleep(1.0)     # several failed tries
        failures = [r for r in caplog.records if "could not be written" in r.getMessage()]
        assert len(failures) == 1
        server.start()
        deadline = time.monotonic() + 10
        while not await store.ledger.rows("2026-11-25", "2026-11-25"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        [row] = await store.ledger.rows("2026-11-25", "2026-11-25")
        assert (row.requests, row.cost_nano) == (3, 21)
    finally:
        await store.close()
        server.close()
    assert unread == []


async def test_closing_while_redis_is_down_leaves_no_flush_behind(caplog):
    server = RedisServer()
    store = RedisStore(server.url, timeout_s=0.2)
    try:
        await store.start()
        server.kill()
        await store.limits.settle(Settlement(entry=LedgerEntry("2026-11-25", "alice", "m", "p", 1, 10, 30, 0, 7)))
        await store.close()
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if "_flush_later" in repr(t.get_coro())] == []
        assert any("could not be written at shutdown" in r.getMessage() for r in caplog.records)
    finally:
        server.close()
