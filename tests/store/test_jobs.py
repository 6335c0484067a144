"""The jobs contract (gateway/store/jobs.py), run against both stores: jobs, their
per-key lists, updates guarded by state and token, deletion and expiry."""
from __future__ import annotations

import asyncio
import time

from gateway.store import JobRecord
from tests.store.records import LEASE_S, created, delivery, finished, ids, job


async def test_a_created_job_reads_back(open_store):
    async with open_store() as store:
        j = job(expires_at=1_900_000_000)
        await store.jobs.create(j, "sora")
        assert await store.jobs.get(j.id) == j
        assert await store.jobs.get("video_none") is None
    async with open_store() as again:          # kept: the same data_dir, the same Redis
        assert await again.jobs.get(j.id) == j


async def test_a_job_on_no_queue_is_listed_finished_and_deleted_but_never_run(open_store):
    """A cache hit: a job made finished, on no queue."""
    async with open_store() as store:
        [queued] = await created(store, 1)
        j = job(status="in_progress")
        await store.jobs.create(j, "")
        assert await store.jobs.get(j.id) == j
        assert await store.jobs.page("alice", None, 10, "asc") == ([queued, j], False)
        assert await store.jobs.update(finished(j), None, [delivery(j, 1, time.time())])
        assert [d.id for d in await store.jobs.outbox_claim(time.time() + 1, 10, 30)] == [f"dlv_{j.id}_1"]
        assert await store.jobs.queue_depth("sora") == 1
        claim = await store.jobs.claim("sora", "w1", LEASE_S)
        assert claim.job_id == queued.id and await store.jobs.claim("sora", "w1", LEASE_S) is None
        assert await store.jobs.delete(j.id) == finished(j)
        assert await store.jobs.get(j.id) is None and await store.jobs.queue_depth("sora") == 1


async def test_lists_are_per_key_and_paged_by_id(open_store):
    async with open_store() as store:
        mine = []
        for _ in range(5):
            mine += await created(store, 1, key="alice")
            await created(store, 1, key="bob")
        page, more = await store.jobs.page("alice", None, 2, "asc")
        assert (ids(page), more) == (ids(mine[:2]), True)
        page, more = await store.jobs.page("alice", mine[1].id, 2, "asc")
        assert (ids(page), more) == (ids(mine[2:4]), True)
        page, more = await store.jobs.page("alice", mine[3].id, 2, "asc")
        assert (ids(page), more) == (ids(mine[4:]), False)
        assert page[0] == mine[4]

        page, more = await store.jobs.page("alice", None, 3, "desc")
        assert (ids(page), more) == (ids(mine[::-1][:3]), True)
        page, more = await store.jobs.page("alice", mine[2].id, 3, "desc")
        assert (ids(page), more) == (ids(mine[1::-1]), False)

        assert await store.jobs.page("alice", None, 5, "asc") == (mine, False)   # exactly full: no more
        bobs, more = await store.jobs.page("bob", None, 10, "desc")
        assert len(bobs) == 5 and not more and all(b.key == "bob" for b in bobs)
        assert await store.jobs.page("carol", None, 10, "asc") == ([], False)


async def test_updates_are_refused_once_finished_or_gone(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        running = JobRecord(j.id, j.key, "in_progress", b'{"progress": 50}')
        assert await store.jobs.update(running)
        assert await store.jobs.get(j.id) == running
        done = finished(j, "failed")
        assert await store.jobs.update(done)
        assert await store.jobs.get(j.id) == done
        assert not await store.jobs.update(finished(j, "completed"))     # terminal: stays failed
        assert not await store.jobs.update(running)
        assert await store.jobs.get(j.id) == done
        assert not await store.jobs.update(job())                        # never existed
        await store.jobs.delete(j.id)
        assert not await store.jobs.update(running)                      # gone


async def test_an_update_with_a_stale_token_is_refused(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        claim = await store.jobs.claim("sora", "w1", 30)
        assert claim is not None and claim.job_id == j.id
        running = JobRecord(j.id, j.key, "in_progress", b"{}")
        assert not await store.jobs.update(running, token=claim.token + "x")
        assert await store.jobs.get(j.id) == j
        assert await store.jobs.update(running, token=claim.token)
        assert await store.jobs.update(running)          # no token: no check (e.g. the API cancelling)


async def test_delete_removes_a_job_from_its_list_and_queue(open_store):
    async with open_store() as store:
        jobs = await created(store, 3)
        assert await store.jobs.delete(jobs[0].id) == jobs[0]
        assert await store.jobs.delete(jobs[0].id) is None
        assert await store.jobs.get(jobs[0].id) is None
        assert await store.jobs.page("alice", None, 10, "asc") == (jobs[1:], False)
        assert await store.jobs.queue_depth("sora") == 2

        running = await store.jobs.claim("sora", "w1", LEASE_S)      # deleted while running
        assert running.job_id == jobs[1].id
        assert await store.jobs.delete(jobs[1].id) == jobs[1]
        assert not await store.jobs.renew(running, LEASE_S)
        assert not await store.jobs.update(finished(jobs[1]), token=running.token)
        assert await store.jobs.queue_depth("sora") == 1
        await asyncio.sleep(LEASE_S + 0.2)
        assert (await store.jobs.claim("sora", "w2", LEASE_S)).job_id == jobs[2].id
        assert await store.jobs.claim("sora", "w2", LEASE_S) is None


async def test_expiring_jobs_are_returned_once(open_store):
    async with open_store() as store:
        a, b, never, c = job(expires_at=100), job(expires_at=200), job(), job(expires_at=300)
        for j in (a, b, never, c):
            await store.jobs.create(j, "sora")
        [d] = await created(store, 1)
        assert await store.jobs.update(finished(d, expires_at=150))     # set when it finished
        assert await store.jobs.expiring(50, 10) == []
        first = await store.jobs.expiring(250, 2)
        second = await store.jobs.expiring(250, 10)
        assert len(first) == 2 and sorted(first + second) == sorted([a.id, b.id, d.id])
        assert await store.jobs.expiring(250, 10) == []
        assert await store.jobs.expiring(10**10, 10) == [c.id]
        assert await store.jobs.expiring(10**10, 10) == []


async def test_old_jobs_are_forgotten_with_their_deliveries(open_store):
    async with open_store() as store:
        now = time.time()
        old, recent, running = await created(store, 3)
        assert await store.jobs.update(finished(old, expires_at=int(now - 100)), None, [delivery(old, 1, now)])
        assert await store.jobs.update(finished(recent, expires_at=int(now + 100)), None, [delivery(recent, 1, now)])
        assert await store.jobs.forget(now - 200, 10) == []
        assert await store.jobs.forget(now, 10) == [old.id]
        assert await store.jobs.get(old.id) is None and await store.jobs.deliveries(old.id) == []
        assert [j.id for j in (await store.jobs.page("alice", None, 10, "asc"))[0]] == [recent.id, running.id]
        assert [d.job_id for d in await store.jobs.outbox_claim(now + 1, 10, 30)] == [recent.id]
        assert await store.jobs.forget(now, 10) == []
        assert (await store.jobs.get(recent.id)).id == recent.id
