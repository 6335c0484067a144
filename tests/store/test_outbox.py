"""The webhook outbox of the jobs contract (gateway/store/jobs.py), run against
both stores: deliveries queued with the update that finishes a job, claimed
once per lease, rescheduled or finished."""
from __future__ import annotations

import time

from tests.store.records import created, delivery, finished


async def test_deliveries_are_queued_with_the_final_update_and_claimed_once_per_lease(open_store):
    now = time.time()
    async with open_store() as store:
        [j] = await created(store, 1)
        sent = [delivery(j, 1, now), delivery(j, 2, now)]
        assert await store.jobs.update(finished(j), deliveries=sent)
        assert await store.jobs.deliveries(j.id) == sent                    # byte-exact bodies, in order

        taken = await store.jobs.outbox_claim(now, 10, 30)
        assert sorted(d.id for d in taken) == sorted(d.id for d in sent)
        assert {d.id: d.body for d in taken} == {d.id: d.body for d in sent}
        assert await store.jobs.outbox_claim(now + 29, 10, 30) == []        # leased to the first sender
        again = await store.jobs.outbox_claim(now + 31, 10, 30)             # its sender died: retried
        assert sorted(d.id for d in again) == sorted(d.id for d in sent)

        # A refused update queues nothing.
        late = delivery(j, 3, now)
        assert not await store.jobs.update(finished(j), deliveries=[late])
        assert await store.jobs.deliveries(j.id) == sent
        assert await store.jobs.outbox_claim(now + 100, 10, 30) != []
        assert await store.jobs.outbox_claim(now + 100, 10, 30) == []


async def test_outbox_claim_takes_at_most_limit_and_only_what_is_due(open_store):
    now = time.time()
    async with open_store() as store:
        [j] = await created(store, 1)
        sent = [delivery(j, n, now + n) for n in range(4)]
        assert await store.jobs.update(finished(j), deliveries=sent)
        assert await store.jobs.outbox_claim(now - 1, 10, 30) == []
        first = await store.jobs.outbox_claim(now + 2, 2, 30)
        assert [d.id for d in first] == [sent[0].id, sent[1].id]
        assert [d.id for d in await store.jobs.outbox_claim(now + 2, 10, 30)] == [sent[2].id]


async def test_outbox_save_reschedules_or_finishes_a_delivery(open_store):
    now = time.time()
    async with open_store() as store:
        [j] = await created(store, 1)
        a, b = delivery(j, 1, now), delivery(j, 2, now)
        assert await store.jobs.update(finished(j), deliveries=[a, b])
        [x, y] = sorted(await store.jobs.outbox_claim(now, 10, 30), key=lambda d: d.id)

        x.attempts, x.next_at = 1, now + 60
        x.history.append({"at": now, "status": 500, "error": "upstream said 500"})
        await store.jobs.outbox_save(x)                                     # failed once: due again in 60 s
        y.attempts, y.status = 1, "delivered"
        y.history.append({"at": now, "status": 200, "error": None})
        await store.jobs.outbox_save(y)

        assert await store.jobs.outbox_claim(now + 59, 10, 1) == []
        [retry] = await store.jobs.outbox_claim(now + 61, 10, 1)
        assert retry == x
        retry.attempts, retry.status = 2, "failed"
        await store.jobs.outbox_save(retry)                                 # given up on
        assert await store.jobs.outbox_claim(now + 10_000, 10, 1) == []
        assert await store.jobs.deliveries(j.id) == [retry, y]
