"""Grants on the Redis store (gateway/store/redis/grants.py): far from its limits a
key's requests are admitted from room Redis set aside for the replica; what a
grant leaves unused goes back, and everything adds up exactly once it ends."""
from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from gateway.store import Admission, Hold, Lease, Settlement, Window
from gateway.store.redis import RedisStore
from gateway.store.redis.grants import FLOOR_N, GRANT_N

BUDGET = "budget:alice:2026-11-01:2026-11-30"
BIG = 10 ** 9


def windows(rpm: int = BIG, tpm: int = BIG, tokens: int = 100) -> list[Window]:
    return [Window("requests", "rpm:key:alice", rpm, 60, 1), Window("tokens", "tpm:key:alice", tpm, 60, tokens)]


def admission(n: int, rpm: int = BIG, slots: int = 100_000, usd_nano: int = BIG, hold: int = 1000) -> Admission:
    return Admission(windows(rpm), Lease("concurrent:key:alice", slots, f"lease-{n}", 600),
                     Hold(BUDGET, usd_nano, hold), time.time())


def settlement(a: Admission, verdict, used_tokens: int, spent: int) -> Settlement:
    return Settlement([(w, verdict.at, used_tokens - w.amount) for w in a.windows if w.family == "tokens"],
                      a.lease, a.hold, spent, given=verdict.given)


async def early_in_a_second() -> None:
    """Wait for a second's first half: in a bucket's last fiftieth Redis gives no grant."""
    if time.time() % 1 > 0.5:
        await asyncio.sleep(1.02 - time.time() % 1)


async def counted(url: str) -> dict[str, int]:
    async with Redis.from_url(url) as r:
        rpm, tpm = await r.hget("gw:rpm:key:alice", "n"), await r.hget("gw:tpm:key:alice", "n")
        budget = await r.hgetall(f"gw:{BUDGET}")
        return {"rpm": int(rpm or 0), "tpm": int(tpm or 0), "slots": await r.zcard("gw:concurrent:key:alice"),
                "held": int(budget.get(b"held", 0)), "spent": int(budget.get(b"spent", 0))}


async def test_far_from_its_limits_a_replica_admits_from_its_grant_and_it_all_adds_up(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    await early_in_a_second()
    try:
        verdicts = []
        for i in range(3 * GRANT_N):
            a = admission(i)
            v = await store.limits.admit(a)
            assert v.allowed
            verdicts.append((a, v))
        given = [v for _, v in verdicts if v.given is not None]
        assert len(given) >= 2 * GRANT_N        # most from grants: a round trip every GRANT_N requests or so
        # Held in Redis meanwhile: every request's share and the grants' unused room too, never less.
        now = await counted(redis_url)
        assert now["rpm"] >= 3 * GRANT_N and now["slots"] >= 3 * GRANT_N and now["held"] >= 3 * GRANT_N * 1000
        # Remaining counts this replica's own room as its to use: it never goes up while nothing is given back.
        remaining = [v.remaining[0] for _, v in verdicts]
        assert remaining == sorted(remaining, reverse=True)
        for a, v in verdicts:
            await store.limits.settle(settlement(a, v, used_tokens=80, spent=700))
        store.limits.end_grants()
    finally:
        await store.close()
    n = 3 * GRANT_N
    assert await counted(redis_url) == {"rpm": n, "tpm": 80 * n, "slots": 0, "held": 0, "spent": 700 * n}


async def test_a_grant_ends_with_its_bucket_and_gives_back_what_it_did_not_use(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    await early_in_a_second()
    try:
        a = admission(0)
        first = await store.limits.admit(a)
        assert first.given is None       # the request that asked: decided by Redis, its grant held beside it
        assert (await counted(redis_url))["rpm"] == 1 + GRANT_N
        await asyncio.sleep(1.1)         # the grant's one-second bucket is over: what it held goes back
        assert await counted(redis_url) == {"rpm": 1, "tpm": 100, "slots": 1, "held": 1000, "spent": 0}
        await store.limits.settle(settlement(a, first, used_tokens=100, spent=1000))
    finally:
        await store.close()
    assert await counted(redis_url) == {"rpm": 1, "tpm": 100, "slots": 0, "held": 0, "spent": 1000}


async def test_requests_that_come_while_a_grant_is_on_its_way_are_admitted_from_it(redis_url):
    """A busy key's requests in flight together do not each go to Redis while the grant is asked:
    they wait for it and take from it, so Redis counts one request and one grant."""
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    await early_in_a_second()
    try:
        for together in (16, 2 * GRANT_N):      # more than a grant holds: the rest ask again, or go alone
            verdicts = await asyncio.gather(*(store.limits.admit(admission(i)) for i in range(together)))
            assert all(v.allowed for v in verdicts)
            assert sum(v.given is not None for v in verdicts) >= min(together - 2, GRANT_N)
            store.limits.end_grants()
            await asyncio.sleep(0.05)
        assert (await counted(redis_url))["rpm"] == 16 + 2 * GRANT_N
    finally:
        await store.close()


async def test_near_a_limit_requests_together_go_to_redis_at_once(redis_url):
    """Once Redis gave no grant (near a limit), requests that come while another asks do not
    wait for it: they go in the same batch."""
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    limit = FLOOR_N + GRANT_N
    try:
        assert (await store.limits.admit(admission(0, rpm=limit))).given is None     # no grant: noted
        async with Redis.from_url(redis_url) as r:
            await r.client_pause(300)       # Redis answers nothing for a moment: what was sent, waits
            together = [asyncio.ensure_future(store.limits.admit(admission(i, rpm=limit))) for i in range(1, 9)]
            await asyncio.sleep(0.1)
            # All eight sent (the first at once, at light load; the others in one batch), none held back.
            assert len(store.limits._pipe.waiting) == 2
        verdicts = await asyncio.gather(*together)
        assert all(v.allowed and v.given is None for v in verdicts)
        assert (await counted(redis_url))["rpm"] == 9
    finally:
        await store.close()


async def test_near_a_limit_every_request_is_decided_by_redis(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    try:
        limit = FLOOR_N + GRANT_N        # the first request's grant would leave less than FLOOR_N requests' room
        verdicts = [await store.limits.admit(admission(i, rpm=limit)) for i in range(5)]
        assert all(v.allowed and v.given is None for v in verdicts)
        assert [v.remaining[0] for v in verdicts] == [limit - 1 - i for i in range(5)]
    finally:
        await store.close()


async def test_two_replicas_never_admit_past_the_limit_and_reach_it_once_grants_end(redis_url):
    limit = FLOOR_N + 4 * GRANT_N
    a_store, b_store = RedisStore(redis_url, timeout_s=2.0), RedisStore(redis_url, timeout_s=2.0)
    await a_store.start()
    await b_store.start()
    try:
        async def one(store: RedisStore, i: int) -> bool:
            return (await store.limits.admit(admission(i, rpm=limit))).allowed

        first = await asyncio.gather(*(one(a_store if i % 2 else b_store, i) for i in range(2 * limit)))
        assert sum(first) <= limit
        a_store.limits.end_grants()
        b_store.limits.end_grants()
        await asyncio.sleep(0.1)
        more = await asyncio.gather(*(one(a_store if i % 2 else b_store, i) for i in range(limit)))
        assert sum(first) + sum(more) == limit       # room a grant held back was there once it ended
    finally:
        await a_store.close()
        await b_store.close()


async def test_spend_past_the_holds_is_charged_and_the_grant_renewed(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    await early_in_a_second()
    try:
        admitted = []
        for i in range(2 * GRANT_N):
            a = admission(i)
            v = await store.limits.admit(a)
            assert v.allowed
            await store.limits.settle(settlement(a, v, used_tokens=100, spent=5000))    # 5x its hold
            admitted.append(v)
        assert sum(v.given is not None for v in admitted) < 2 * GRANT_N
    finally:
        await store.close()
    assert await counted(redis_url) == {"rpm": 2 * GRANT_N, "tpm": 100 * 2 * GRANT_N, "slots": 0, "held": 0,
                                        "spent": 5000 * 2 * GRANT_N}


async def test_grants_can_be_switched_off(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0, grants=False)
    await store.start()
    try:
        verdicts = [await store.limits.admit(admission(i)) for i in range(GRANT_N)]
        assert all(v.given is None for v in verdicts)
        assert (await counted(redis_url))["rpm"] == GRANT_N
    finally:
        await store.close()


async def test_usage_leaves_out_the_room_a_grant_holds_unused(redis_url):
    store = RedisStore(redis_url, timeout_s=2.0)
    await early_in_a_second()
    await store.start()
    try:
        admitted = [(a, await store.limits.admit(a)) for a in (admission(i) for i in range(5))]
        assert any(v.given is not None for _, v in admitted)
        assert (await counted(redis_url))["rpm"] > 5             # Redis counts the grant's room...
        use = await store.limits.usage(windows(), ["concurrent:key:alice"])
        assert use.windows == [5, 500] and use.leases == [5]     # ...the report, what requests used
        for a, v in admitted[:2]:
            await store.limits.settle(settlement(a, v, used_tokens=100, spent=1000))
        assert (await store.limits.usage(windows(), ["concurrent:key:alice"])).leases == [3]
    finally:
        await store.close()
