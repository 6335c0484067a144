"""The work queues of the jobs contract (gateway/store/jobs.py), run against both
stores: claims in order, leases that lapse and are taken over, tokens that
shut out a run that was taken over."""
from __future__ import annotations

import asyncio
import time

from gateway.store import JobRecord
from tests.store.records import LEASE_S, created, finished, ids


async def test_claims_come_in_order_and_queues_are_separate(open_store):
    async with open_store() as store:
        jobs = await created(store, 3, queue="sora")
        other = await created(store, 1, queue="local")
        assert await store.jobs.queue_depth("sora") == 3
        claims = [await store.jobs.claim("sora", f"w{i}", 30) for i in range(3)]
        assert [c.job_id for c in claims] == ids(jobs)
        assert all(c.attempt == 1 and c.queue == "sora" and c.consumer == f"w{i}" for i, c in enumerate(claims))
        assert len({c.token for c in claims}) == 3
        assert await store.jobs.claim("sora", "w9", 30) is None
        assert await store.jobs.claim("nothing-here", "w9", 30) is None
        assert (await store.jobs.claim("local", "w9", 30)).job_id == other[0].id
        assert await store.jobs.queue_depth("sora") == 3                    # waiting or running
        assert await store.jobs.queue_depth("nothing-here") == 0


async def test_a_lapsed_claim_is_taken_over_and_the_old_run_is_shut_out(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        old = await store.jobs.claim("sora", "dies", LEASE_S)
        assert old.attempt == 1
        assert await store.jobs.claim("sora", "other", LEASE_S) is None
        await asyncio.sleep(LEASE_S + 0.2)
        new = await store.jobs.claim("sora", "other", LEASE_S)
        assert new is not None and new.job_id == j.id
        assert new.attempt == 2 and new.token != old.token and new.consumer == "other"

        running = JobRecord(j.id, j.key, "in_progress", b"{}")
        assert not await store.jobs.renew(old, LEASE_S)
        assert not await store.jobs.update(running, token=old.token)
        assert await store.jobs.update(running, token=new.token)
        assert await store.jobs.renew(new, LEASE_S)
        await store.jobs.done(old)                    # the old run giving up does not end the new one
        assert await store.jobs.queue_depth("sora") == 1
        assert await store.jobs.renew(new, LEASE_S)


async def test_a_renewed_claim_is_kept(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        mine = await store.jobs.claim("sora", "alive", LEASE_S)
        for _ in range(6):
            await asyncio.sleep(LEASE_S / 3)
            assert await store.jobs.renew(mine, LEASE_S)
            assert await store.jobs.claim("sora", "other", LEASE_S) is None
        await asyncio.sleep(LEASE_S + 0.2)
        assert (await store.jobs.claim("sora", "other", LEASE_S)).job_id == j.id
        assert not await store.jobs.renew(mine, LEASE_S)


async def test_claims_are_shared_between_store_instances(open_store):
    async with open_store() as one, open_store() as two:
        jobs = await created(one, 2)
        a = await two.jobs.claim("sora", "w2", 30)
        b = await one.jobs.claim("sora", "w1", 30)
        assert [a.job_id, b.job_id] == ids(jobs)
        assert await one.jobs.claim("sora", "w1", 30) is None
        assert await one.jobs.renew(a, 30)


async def test_done_takes_a_job_off_its_queue(open_store):
    async with open_store() as store:
        jobs = await created(store, 3)
        first = await store.jobs.claim("sora", "w1", LEASE_S)
        assert await store.jobs.queue_depth("sora") == 3
        assert await store.jobs.update(finished(jobs[0]), token=first.token)
        await store.jobs.done(first)
        assert await store.jobs.queue_depth("sora") == 2
        await asyncio.sleep(LEASE_S + 0.2)                             # never comes back
        assert [(await store.jobs.claim("sora", "w2", LEASE_S)).job_id for _ in range(2)] == ids(jobs[1:])
        assert await store.jobs.claim("sora", "w2", LEASE_S) is None


async def test_a_finished_job_left_on_its_queue_is_not_run(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        assert await store.jobs.update(finished(j, "failed"))           # e.g. cancelled while queued
        assert await store.jobs.claim("sora", "w1", LEASE_S) is None


async def test_the_oldest_queued_job(open_store):
    async with open_store() as store:
        assert await store.jobs.queue_oldest("sora") is None
        before = time.time()
        first, second = await created(store, 2)
        oldest = await store.jobs.queue_oldest("sora")
        assert before - 1 <= oldest <= time.time() + 1
        claim = await store.jobs.claim("sora", "c1", LEASE_S)
        await store.jobs.done(claim)
        assert await store.jobs.queue_oldest("sora") >= oldest
        await store.jobs.done(await store.jobs.claim("sora", "c1", LEASE_S))
        assert await store.jobs.queue_oldest("sora") is None
