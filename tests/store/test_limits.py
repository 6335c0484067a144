"""The limits contract (gateway/store/limits.py), run against both stores: windows,
leases and budget holds, admitted and settled atomically."""
from __future__ import annotations

import asyncio
import time

from gateway.store import Admission, Hold, InUse, Lease, LedgerEntry, Settlement, Window

MONTH = "budget:alice:2026-11-01:2026-11-30"


def rpm(limit: int, key: str = "rpm:key:alice", window_s: int = 60) -> Window:
    return Window("requests", key, limit, window_s, 1)


def tpm(limit: int, amount: int) -> Window:
    return Window("tokens", "tpm:key:alice", limit, 60, amount)


def admission(*windows: Window, lease: Lease | None = None, hold: Hold | None = None) -> Admission:
    return Admission(list(windows), lease, hold, time.time())


def lease(lease_id: str, limit: int = 2, ttl_s: float = 600) -> Lease:
    return Lease("concurrent:key:alice", limit, lease_id, ttl_s)


def entry(day: str, cost: int, key: str = "alice", model: str = "m", provider: str = "p", **kw) -> LedgerEntry:
    return LedgerEntry(day, key, model, provider, cost_nano=cost, **kw)


async def test_a_window_admits_exactly_its_limit(open_store):
    async with open_store() as store:
        verdicts = [await store.limits.admit(admission(rpm(5))) for _ in range(7)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
    assert [v.remaining for v in verdicts[:5]] == [[4], [3], [2], [1], [0]]
    refused = verdicts[5]
    assert refused.refused_by == "requests"
    assert 0 < refused.retry_after_s <= 61        # when this minute's bucket leaves the window
    assert all(0 < v.reset_s[0] <= 61 for v in verdicts[:5])


async def test_concurrent_admissions_never_overshoot(open_store):
    async with open_store() as store:
        verdicts = await asyncio.gather(*(store.limits.admit(admission(rpm(10))) for _ in range(50)))
    assert sum(v.allowed for v in verdicts) == 10
    assert sorted(v.remaining[0] for v in verdicts if v.allowed) == list(range(10))


async def test_retry_after_is_when_it_fits_again(open_store):
    async with open_store() as store:
        assert (await store.limits.admit(admission(rpm(2, window_s=1)))).allowed
        assert (await store.limits.admit(admission(rpm(2, window_s=1)))).allowed
        refused = await store.limits.admit(admission(rpm(2, window_s=1)))
        assert not refused.allowed and 0 < refused.retry_after_s <= 1.05
        await asyncio.sleep(refused.retry_after_s + 0.02)
        assert (await store.limits.admit(admission(rpm(2, window_s=1)))).allowed


async def test_a_request_larger_than_the_limit_waits_a_whole_window(open_store):
    async with open_store() as store:
        v = await store.limits.admit(admission(tpm(100, 101)))
    assert not v.allowed and v.refused_by == "tokens" and v.retry_after_s == 60


async def test_a_refusal_charges_nothing(open_store):
    async with open_store() as store:
        refused = await store.limits.admit(admission(rpm(10), tpm(100, 150), lease=lease("a")))
        assert not refused.allowed and refused.refused_by == "tokens"
        ok = await store.limits.admit(admission(rpm(10), tpm(100, 40), lease=lease("b", limit=1)))
    assert ok.allowed and ok.remaining == [9, 60]


async def test_token_estimates_are_corrected_to_real_usage(open_store):
    async with open_store() as store:
        first = await store.limits.admit(admission(tpm(100, 80)))
        assert first.allowed and first.remaining == [20]
        assert not (await store.limits.admit(admission(tpm(100, 80)))).allowed
        # It used 30 tokens, not 80.
        await store.limits.settle(Settlement(corrections=[(tpm(100, 80), first.at, -50)]))
        second = await store.limits.admit(admission(tpm(100, 70)))
        assert second.allowed and second.remaining == [0]


async def test_a_correction_never_goes_below_zero(open_store):
    async with open_store() as store:
        first = await store.limits.admit(admission(tpm(100, 50)))
        await store.limits.settle(Settlement(corrections=[(tpm(100, 50), first.at, -1000)]))
        assert (await store.limits.admit(admission(tpm(100, 100)))).remaining == [0]


async def test_leases_are_released_on_settle(open_store):
    async with open_store() as store:
        assert (await store.limits.admit(admission(lease=lease("a")))).allowed
        assert (await store.limits.admit(admission(lease=lease("b")))).allowed
        refused = await store.limits.admit(admission(lease=lease("c")))
        assert not refused.allowed and refused.refused_by == "concurrent" and refused.retry_after_s > 0
        await store.limits.settle(Settlement(lease=lease("a")))
        assert (await store.limits.admit(admission(lease=lease("c")))).allowed
        assert not (await store.limits.admit(admission(lease=lease("d")))).allowed


async def test_leases_of_a_dead_replica_expire(open_store):
    async with open_store() as store:
        assert (await store.limits.admit(admission(lease=lease("a", limit=1, ttl_s=0.2)))).allowed
        assert not (await store.limits.admit(admission(lease=lease("b", limit=1, ttl_s=0.2)))).allowed
        await asyncio.sleep(0.25)      # nobody settles "a"
        assert (await store.limits.admit(admission(lease=lease("b", limit=1, ttl_s=0.2)))).allowed


async def test_budgets_stop_exactly_at_the_limit(open_store):
    async with open_store() as store:
        holds = [await store.limits.admit(admission(hold=Hold(MONTH, 1000, 300))) for _ in range(4)]
        assert [v.allowed for v in holds] == [True, True, True, False]
        assert holds[3].refused_by == "budget"
        for cost in (250, 300, 200):
            await store.limits.settle(Settlement(hold=Hold(MONTH, 1000, 300), spent_nano=cost,
                                          entry=entry("2026-11-10", cost)))
        assert await store.limits.budget_spent(MONTH) == 750
        # Holds are released: exactly the 250 left fits, then nothing.
        assert (await store.limits.admit(admission(hold=Hold(MONTH, 1000, 250)))).allowed
        assert not (await store.limits.admit(admission(hold=Hold(MONTH, 1000, 1)))).allowed


async def test_concurrent_holds_never_overspend(open_store):
    async with open_store() as store:
        verdicts = await asyncio.gather(*(store.limits.admit(admission(hold=Hold(MONTH, 10_000, 1_000)))
                                          for _ in range(30)))
    assert sum(v.allowed for v in verdicts) == 10


async def test_budget_spent_starts_from_the_ledger(open_store):
    async with open_store() as store:
        for e in [entry("2026-10-31", 1), entry("2026-11-01", 20), entry("2026-11-30", 300),
                  entry("2026-11-15", 4000, key="bob")]:
            await store.limits.settle(Settlement(entry=e))
    async with open_store() as store:     # a later process, a new period: only the ledger knows
        assert await store.limits.budget_spent(MONTH) == 320
        assert await store.limits.budget_spent("budget:alice:0000-01-01:9999-12-31") == 321
        assert (await store.limits.admit(admission(hold=Hold(MONTH, 400, 80)))).allowed
        assert not (await store.limits.admit(admission(hold=Hold(MONTH, 400, 1)))).allowed
        await store.limits.settle(Settlement(hold=Hold(MONTH, 400, 80), spent_nano=60, entry=entry("2026-11-20", 60)))
        assert await store.limits.budget_spent(MONTH) == 380
        assert await store.limits.budget_spent("budget:alice:0000-01-01:9999-12-31") == 381


async def test_a_window_forgets_its_oldest_buckets_as_they_leave(open_store):
    """Both stores agree on what a sliding window still counts as its buckets leave one by one
    (Redis keeps a running sum, dropping a bucket when its time comes)."""
    async with open_store() as store:
        async def remaining() -> int:
            verdict = await store.limits.admit(admission(rpm(4, window_s=2)))
            assert verdict.allowed
            return verdict.remaining[0]
        assert await remaining() == 3                        # t0: one
        await asyncio.sleep(1.0)
        assert [await remaining(), await remaining()] == [2, 1]    # t0+1: two more
        await asyncio.sleep(1.2)
        assert await remaining() == 1                        # t0+2.2: the first left; two stay, one more
        await asyncio.sleep(1.1)
        assert await remaining() == 2                        # t0+3.3: the two left; one stays, one more


async def test_corrections_that_empty_buckets_keep_counts_and_reset_times_right(open_store):
    """A request that used nothing empties the bucket it was charged in: both stores then count
    what is left, and reset from the oldest bucket still holding units (the next one, when the
    emptied bucket was the oldest)."""
    async with open_store() as store:
        async def charge(amount: int):
            verdict = await store.limits.admit(admission(tpm(1000, amount)))
            assert verdict.allowed
            return verdict

        first = await charge(10)                                   # bucket b0
        await asyncio.sleep(1.1)
        second = await charge(20)                                  # bucket b1 (b0 still the oldest)
        third = await charge(30)                                   # b1 too
        assert second.remaining == [970] and third.remaining == [940]
        await store.limits.settle(Settlement([(tpm(1000, 10), first.at, -10)]))          # b0: 0
        fourth = await charge(1)
        assert fourth.remaining == [949]
        assert fourth.reset_s[0] > third.reset_s[0] + 0.5          # b1 is the oldest now, a second later
        await store.limits.settle(Settlement([(tpm(1000, 20), second.at, -20)]))         # b1: 31 left
        await store.limits.settle(Settlement([(tpm(1000, 1), fourth.at, -1)]))
        fifth = await charge(0)
        assert fifth.remaining == [970]
        await store.limits.settle(Settlement([(tpm(1000, 30), third.at, -40)]))          # never below 0
        assert (await charge(0)).remaining == [1000]
        sixth = await charge(5)
        assert sixth.remaining == [995] and 59 < sixth.reset_s[0] <= 60


# -- usage: what the windows and leases count this moment, read only --------------------------------

async def test_usage_counts_what_admit_counts_and_charges_nothing(open_store):
    async with open_store() as store:
        for amount in (30, 50):
            assert (await store.limits.admit(admission(rpm(10), tpm(1000, amount), lease=lease(f"l{amount}")))).allowed
        asked = [rpm(10), tpm(1000, 0), rpm(10, key="rpm:key:nobody")]
        use = await store.limits.usage(asked, ["concurrent:key:alice", "concurrent:key:nobody"])
        assert (use.windows, use.leases) == ([2, 80, 0], [2, 0])
        assert await store.limits.usage(asked, ["concurrent:key:alice"]) == InUse([2, 80, 0], [2])
        # nothing was charged: the window still has room for exactly 8 more
        assert (await store.limits.admit(admission(rpm(10)))).remaining == [7]
        await store.limits.settle(Settlement(lease=lease("l30")))
        assert (await store.limits.usage([], ["concurrent:key:alice"])).leases == [1]
        assert await store.limits.usage([], []) == InUse([], [])


async def test_usage_follows_a_window_as_its_buckets_leave(open_store):
    """At each step usage says what the next admission counts: a probe charging 0 units sees
    `limit - used` left. Usage reads first, before the probe lets the store tidy the window."""
    async with open_store() as store:
        async def used_then_probe() -> tuple[int, int]:
            used = (await store.limits.usage([rpm(100, window_s=2)], [])).windows[0]
            probe = await store.limits.admit(admission(Window("requests", "rpm:key:alice", 100, 2, 0)))
            return used, 100 - probe.remaining[0]

        async def charge(n: int) -> None:
            for _ in range(n):
                assert (await store.limits.admit(admission(rpm(100, window_s=2)))).allowed

        await charge(3)                                  # t0: three
        assert await used_then_probe() == (3, 3)
        await asyncio.sleep(1.0)
        await charge(2)                                  # t0+1: two more
        assert await used_then_probe() == (5, 5)
        await asyncio.sleep(1.2)
        assert await used_then_probe() == (2, 2)         # t0+2.2: the first three left
        await charge(1)
        await asyncio.sleep(2.1)
        assert await used_then_probe() == (0, 0)         # every bucket left


async def test_usage_after_corrections_that_empty_buckets(open_store):
    """An emptied oldest bucket takes the window's oldest mark with it (on Redis): usage then
    sums what is left, as the next admission does."""
    async with open_store() as store:
        first = await store.limits.admit(admission(tpm(1000, 10)))
        await asyncio.sleep(1.05)                                                  # the next bucket
        second = await store.limits.admit(admission(tpm(1000, 20)))
        await store.limits.settle(Settlement([(tpm(1000, 10), first.at, -10)]))    # the oldest bucket: 0
        assert (await store.limits.usage([tpm(1000, 0)], [])).windows == [20]
        assert (await store.limits.admit(admission(tpm(1000, 0)))).remaining == [980]
        await store.limits.settle(Settlement([(tpm(1000, 20), second.at, -25)]))   # never below 0
        assert (await store.limits.usage([tpm(1000, 0)], [])).windows == [0]


async def test_usage_leaves_out_expired_leases_without_freeing_them(open_store):
    """A dead replica's leases stop counting at their expiry, however many it left (more than the
    Redis store reads in its first trip)."""
    async with open_store() as store:
        for i in range(11):
            assert (await store.limits.admit(admission(lease=lease(f"dead{i}", limit=20, ttl_s=0.2)))).allowed
        assert (await store.limits.admit(admission(lease=lease("alive", limit=20)))).allowed
        assert (await store.limits.usage([], ["concurrent:key:alice"])).leases == [12]
        await asyncio.sleep(0.25)
        assert (await store.limits.usage([], ["concurrent:key:alice"])).leases == [1]
        await store.limits.settle(Settlement(lease=lease("alive", limit=20)))
        assert (await store.limits.usage([], ["concurrent:key:alice"])).leases == [0]
