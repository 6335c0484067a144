"""The video-job half of the Store contract (gateway/store/__init__.py), run
against both stores: jobs, their per-key lists, work queues with leases and
tokens, the expiry index, the webhook outbox and shared secrets."""
from __future__ import annotations

import asyncio
import itertools
import time

from gateway.store import Delivery, JobRecord

LEASE_S = 0.3
_seq = itertools.count(1)


def job(key: str = "alice", status: str = "queued", expires_at: int | None = None) -> JobRecord:
    """A new job; ids sort by creation, as the gateway's do."""
    n = next(_seq)
    return JobRecord(f"video_{time.time_ns():020x}{n:06x}", key, status,
                     b'{"id": %d, "prompt": "a cat \xc3\xa9"}' % n, expires_at)


def finished(j: JobRecord, status: str = "completed", expires_at: int | None = 2_000_000_000) -> JobRecord:
    return JobRecord(j.id, j.key, status, j.data + b" ", expires_at)


def delivery(j: JobRecord, n: int, next_at: float) -> Delivery:
    return Delivery(f"dlv_{j.id}_{n}", f"evt_{n}", f"https://example.test/hook/{n}",
                    b'{"type": "video.completed", "data": {"id": "%s", "caf\xc3\xa9": %d}}' % (j.id.encode(), n),
                    j.id, next_at=next_at)


async def created(store, n: int, queue: str = "sora", key: str = "alice") -> list[JobRecord]:
    jobs = [job(key) for _ in range(n)]
    for j in jobs:
        await store.job_create(j, queue)
    return jobs


def ids(jobs) -> list[str]:
    return [j.id for j in jobs]


# -- jobs and lists --------------------------------------------------------------

async def test_a_created_job_reads_back(open_store):
    async with open_store() as store:
        j = job(expires_at=1_900_000_000)
        await store.job_create(j, "sora")
        assert await store.job_get(j.id) == j
        assert await store.job_get("video_none") is None
    async with open_store() as again:          # kept: the same data_dir, the same Redis
        assert await again.job_get(j.id) == j


async def test_lists_are_per_key_and_paged_by_id(open_store):
    async with open_store() as store:
        mine = []
        for _ in range(5):
            mine += await created(store, 1, key="alice")
            await created(store, 1, key="bob")
        page, more = await store.job_list("alice", None, 2, "asc")
        assert (ids(page), more) == (ids(mine[:2]), True)
        page, more = await store.job_list("alice", mine[1].id, 2, "asc")
        assert (ids(page), more) == (ids(mine[2:4]), True)
        page, more = await store.job_list("alice", mine[3].id, 2, "asc")
        assert (ids(page), more) == (ids(mine[4:]), False)
        assert page[0] == mine[4]

        page, more = await store.job_list("alice", None, 3, "desc")
        assert (ids(page), more) == (ids(mine[::-1][:3]), True)
        page, more = await store.job_list("alice", mine[2].id, 3, "desc")
        assert (ids(page), more) == (ids(mine[1::-1]), False)

        assert await store.job_list("alice", None, 5, "asc") == (mine, False)   # exactly full: no more
        bobs, more = await store.job_list("bob", None, 10, "desc")
        assert len(bobs) == 5 and not more and all(b.key == "bob" for b in bobs)
        assert await store.job_list("carol", None, 10, "asc") == ([], False)


async def test_updates_are_refused_once_finished_or_gone(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        running = JobRecord(j.id, j.key, "in_progress", b'{"progress": 50}')
        assert await store.job_update(running)
        assert await store.job_get(j.id) == running
        done = finished(j, "failed")
        assert await store.job_update(done)
        assert await store.job_get(j.id) == done
        assert not await store.job_update(finished(j, "completed"))     # terminal: stays failed
        assert not await store.job_update(running)
        assert await store.job_get(j.id) == done
        assert not await store.job_update(job())                        # never existed
        await store.job_delete(j.id)
        assert not await store.job_update(running)                      # gone


async def test_an_update_with_a_stale_token_is_refused(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        claim = await store.queue_claim("sora", "w1", 30)
        assert claim is not None and claim.job_id == j.id
        running = JobRecord(j.id, j.key, "in_progress", b"{}")
        assert not await store.job_update(running, token=claim.token + "x")
        assert await store.job_get(j.id) == j
        assert await store.job_update(running, token=claim.token)
        assert await store.job_update(running)          # no token: no check (e.g. the API cancelling)


# -- the webhook outbox ------------------------------------------------------------

async def test_deliveries_are_queued_with_the_final_update_and_claimed_once_per_lease(open_store):
    now = time.time()
    async with open_store() as store:
        [j] = await created(store, 1)
        sent = [delivery(j, 1, now), delivery(j, 2, now)]
        assert await store.job_update(finished(j), deliveries=sent)
        assert await store.deliveries(j.id) == sent                    # byte-exact bodies, in order

        taken = await store.outbox_claim(now, 10, 30)
        assert sorted(d.id for d in taken) == sorted(d.id for d in sent)
        assert {d.id: d.body for d in taken} == {d.id: d.body for d in sent}
        assert await store.outbox_claim(now + 29, 10, 30) == []        # leased to the first sender
        again = await store.outbox_claim(now + 31, 10, 30)             # its sender died: retried
        assert sorted(d.id for d in again) == sorted(d.id for d in sent)

        # A refused update queues nothing.
        late = delivery(j, 3, now)
        assert not await store.job_update(finished(j), deliveries=[late])
        assert await store.deliveries(j.id) == sent
        assert await store.outbox_claim(now + 100, 10, 30) != [] and await store.outbox_claim(now + 100, 10, 30) == []


async def test_outbox_claim_takes_at_most_limit_and_only_what_is_due(open_store):
    now = time.time()
    async with open_store() as store:
        [j] = await created(store, 1)
        sent = [delivery(j, n, now + n) for n in range(4)]
        assert await store.job_update(finished(j), deliveries=sent)
        assert await store.outbox_claim(now - 1, 10, 30) == []
        first = await store.outbox_claim(now + 2, 2, 30)
        assert [d.id for d in first] == [sent[0].id, sent[1].id]
        assert [d.id for d in await store.outbox_claim(now + 2, 10, 30)] == [sent[2].id]


async def test_outbox_save_reschedules_or_finishes_a_delivery(open_store):
    now = time.time()
    async with open_store() as store:
        [j] = await created(store, 1)
        a, b = delivery(j, 1, now), delivery(j, 2, now)
        assert await store.job_update(finished(j), deliveries=[a, b])
        [x, y] = sorted(await store.outbox_claim(now, 10, 30), key=lambda d: d.id)

        x.attempts, x.next_at = 1, now + 60
        x.history.append({"at": now, "status": 500, "error": "upstream said 500"})
        await store.outbox_save(x)                                     # failed once: due again in 60 s
        y.attempts, y.status = 1, "delivered"
        y.history.append({"at": now, "status": 200, "error": None})
        await store.outbox_save(y)

        assert await store.outbox_claim(now + 59, 10, 1) == []
        [retry] = await store.outbox_claim(now + 61, 10, 1)
        assert retry == x
        retry.attempts, retry.status = 2, "failed"
        await store.outbox_save(retry)                                 # given up on
        assert await store.outbox_claim(now + 10_000, 10, 1) == []
        assert await store.deliveries(j.id) == [retry, y]


# -- queues ------------------------------------------------------------------------

async def test_claims_come_in_order_and_queues_are_separate(open_store):
    async with open_store() as store:
        jobs = await created(store, 3, queue="sora")
        other = await created(store, 1, queue="local")
        assert await store.queue_depth("sora") == 3
        claims = [await store.queue_claim("sora", f"w{i}", 30) for i in range(3)]
        assert [c.job_id for c in claims] == ids(jobs)
        assert all(c.attempt == 1 and c.queue == "sora" and c.consumer == f"w{i}" for i, c in enumerate(claims))
        assert len({c.token for c in claims}) == 3
        assert await store.queue_claim("sora", "w9", 30) is None
        assert await store.queue_claim("nothing-here", "w9", 30) is None
        assert (await store.queue_claim("local", "w9", 30)).job_id == other[0].id
        assert await store.queue_depth("sora") == 3                    # waiting or running
        assert await store.queue_depth("nothing-here") == 0


async def test_a_lapsed_claim_is_taken_over_and_the_old_run_is_shut_out(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        old = await store.queue_claim("sora", "dies", LEASE_S)
        assert old.attempt == 1
        assert await store.queue_claim("sora", "other", LEASE_S) is None
        await asyncio.sleep(LEASE_S + 0.2)
        new = await store.queue_claim("sora", "other", LEASE_S)
        assert new is not None and new.job_id == j.id
        assert new.attempt == 2 and new.token != old.token and new.consumer == "other"

        running = JobRecord(j.id, j.key, "in_progress", b"{}")
        assert not await store.queue_renew(old, LEASE_S)
        assert not await store.job_update(running, token=old.token)
        assert await store.job_update(running, token=new.token)
        assert await store.queue_renew(new, LEASE_S)
        await store.queue_done(old)                    # the old run giving up does not end the new one
        assert await store.queue_depth("sora") == 1
        assert await store.queue_renew(new, LEASE_S)


async def test_a_renewed_claim_is_kept(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        mine = await store.queue_claim("sora", "alive", LEASE_S)
        for _ in range(6):
            await asyncio.sleep(LEASE_S / 3)
            assert await store.queue_renew(mine, LEASE_S)
            assert await store.queue_claim("sora", "other", LEASE_S) is None
        await asyncio.sleep(LEASE_S + 0.2)
        assert (await store.queue_claim("sora", "other", LEASE_S)).job_id == j.id
        assert not await store.queue_renew(mine, LEASE_S)


async def test_claims_are_shared_between_store_instances(open_store):
    async with open_store() as one, open_store() as two:
        jobs = await created(one, 2)
        a = await two.queue_claim("sora", "w2", 30)
        b = await one.queue_claim("sora", "w1", 30)
        assert [a.job_id, b.job_id] == ids(jobs)
        assert await one.queue_claim("sora", "w1", 30) is None
        assert await one.queue_renew(a, 30)


async def test_done_takes_a_job_off_its_queue(open_store):
    async with open_store() as store:
        jobs = await created(store, 3)
        first = await store.queue_claim("sora", "w1", LEASE_S)
        assert await store.queue_depth("sora") == 3
        assert await store.job_update(finished(jobs[0]), token=first.token)
        await store.queue_done(first)
        assert await store.queue_depth("sora") == 2
        await asyncio.sleep(LEASE_S + 0.2)                             # never comes back
        assert [(await store.queue_claim("sora", "w2", LEASE_S)).job_id for _ in range(2)] == ids(jobs[1:])
        assert await store.queue_claim("sora", "w2", LEASE_S) is None


async def test_a_finished_job_left_on_its_queue_is_not_run(open_store):
    async with open_store() as store:
        [j] = await created(store, 1)
        assert await store.job_update(finished(j, "failed"))           # e.g. cancelled while queued
        assert await store.queue_claim("sora", "w1", LEASE_S) is None


async def test_delete_removes_a_job_from_its_list_and_queue(open_store):
    async with open_store() as store:
        jobs = await created(store, 3)
        assert await store.job_delete(jobs[0].id) == jobs[0]
        assert await store.job_delete(jobs[0].id) is None
        assert await store.job_get(jobs[0].id) is None
        assert await store.job_list("alice", None, 10, "asc") == (jobs[1:], False)
        assert await store.queue_depth("sora") == 2

        running = await store.queue_claim("sora", "w1", LEASE_S)      # deleted while running
        assert running.job_id == jobs[1].id
        assert await store.job_delete(jobs[1].id) == jobs[1]
        assert not await store.queue_renew(running, LEASE_S)
        assert not await store.job_update(finished(jobs[1]), token=running.token)
        assert await store.queue_depth("sora") == 1
        await asyncio.sleep(LEASE_S + 0.2)
        assert (await store.queue_claim("sora", "w2", LEASE_S)).job_id == jobs[2].id
        assert await store.queue_claim("sora", "w2", LEASE_S) is None


# -- expiry and secrets ------------------------------------------------------------

async def test_expiring_jobs_are_returned_once(open_store):
    async with open_store() as store:
        a, b, never, c = job(expires_at=100), job(expires_at=200), job(), job(expires_at=300)
        for j in (a, b, never, c):
            await store.job_create(j, "sora")
        [d] = await created(store, 1)
        assert await store.job_update(finished(d, expires_at=150))     # set when it finished
        assert await store.jobs_expiring(50, 10) == []
        first = await store.jobs_expiring(250, 2)
        second = await store.jobs_expiring(250, 10)
        assert len(first) == 2 and sorted(first + second) == sorted([a.id, b.id, d.id])
        assert await store.jobs_expiring(250, 10) == []
        assert await store.jobs_expiring(10**10, 10) == [c.id]
        assert await store.jobs_expiring(10**10, 10) == []


async def test_a_secret_is_made_once_and_shared(open_store):
    async with open_store() as one, open_store() as two:
        s = await one.secret("links")
        assert isinstance(s, bytes) and len(s) == 32
        assert await two.secret("links") == s
        assert await one.secret("other") != s
    async with open_store() as later:
        assert await later.secret("links") == s


# -- workers ---------------------------------------------------------------------

async def test_workers_are_live_until_their_heartbeat_lapses(open_store):
    async with open_store() as store:
        assert await store.workers("ltx") == []
        await store.worker_beat("ltx", "gpu-1", {"device": "cuda:0"}, LEASE_S)
        await store.worker_beat("ltx", "gpu-2", {"device": "cuda:1"}, 10)
        await store.worker_beat("wan", "gpu-3", {}, 10)
        live = sorted(await store.workers("ltx"), key=lambda w: w["id"])
        assert [(w["id"], w["device"]) for w in live] == [("gpu-1", "cuda:0"), ("gpu-2", "cuda:1")]
        assert live[0]["until"] > time.time()
        await asyncio.sleep(LEASE_S + 0.1)
        assert [w["id"] for w in await store.workers("ltx")] == ["gpu-2"]
        await store.worker_beat("ltx", "gpu-1", {"device": "cuda:0"}, 10)    # back again
        assert sorted(w["id"] for w in await store.workers("ltx")) == ["gpu-1", "gpu-2"]


async def test_the_oldest_queued_job(open_store):
    async with open_store() as store:
        assert await store.queue_oldest("sora") is None
        before = time.time()
        first, second = await created(store, 2)
        oldest = await store.queue_oldest("sora")
        assert before - 1 <= oldest <= time.time() + 1
        claim = await store.queue_claim("sora", "c1", LEASE_S)
        await store.queue_done(claim)
        assert await store.queue_oldest("sora") >= oldest
        await store.queue_done(await store.queue_claim("sora", "c1", LEASE_S))
        assert await store.queue_oldest("sora") is None


# -- config versions -------------------------------------------------------------

async def test_config_versions_are_compare_and_set(open_store):
    from gateway.store import ConfigVersion

    async with open_store() as store:
        assert await store.config_latest() is None
        first = ConfigVersion(0, time.time(), "file", "seeded", "abc", b'{"a": 1}')
        assert await store.config_put(first, 0) == 1
        assert await store.config_put(first, 0) is None          # someone else came first
        assert await store.config_put(ConfigVersion(0, time.time(), "admin", "b", "abc", b'{"a": 2}'), 1) == 2
        latest = await store.config_latest()
        assert (latest.version, latest.author, latest.document, latest.file_hash) == (2, "admin", b'{"a": 2}', "abc")
        assert (await store.config_version(1)).document == b'{"a": 1}'
        assert [v.version for v in await store.config_versions(10)] == [2, 1]
        assert (await store.config_versions(10))[0].document is None
        for n in range(2, 60):
            assert await store.config_put(ConfigVersion(0, time.time(), "admin", str(n), "", b"{}"), n) == n + 1
        kept = await store.config_versions(100)
        assert len(kept) == 50 and kept[0].version == 60 and await store.config_version(1) is None


async def test_old_jobs_are_forgotten_with_their_deliveries(open_store):
    async with open_store() as store:
        now = time.time()
        old, recent, running = await created(store, 3)
        assert await store.job_update(finished(old, expires_at=int(now - 100)), None, [delivery(old, 1, now)])
        assert await store.job_update(finished(recent, expires_at=int(now + 100)), None, [delivery(recent, 1, now)])
        assert await store.jobs_forget(now - 200, 10) == []
        assert await store.jobs_forget(now, 10) == [old.id]
        assert await store.job_get(old.id) is None and await store.deliveries(old.id) == []
        assert [j.id for j in (await store.job_list("alice", None, 10, "asc"))[0]] == [recent.id, running.id]
        assert [d.job_id for d in await store.outbox_claim(now + 1, 10, 30)] == [recent.id]
        assert await store.jobs_forget(now, 10) == []
        assert (await store.job_get(recent.id)).id == recent.id
