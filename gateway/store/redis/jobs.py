"""Video jobs, their work queues and the webhook outbox on Redis.

A job is a HASH, listed per key in a ZSET ranged by lex (ids sort by
creation), and queued as an entry of a Redis Stream read by the consumer
group `workers`. A run holds its entry in the group's pending list; the
entry's idle time is its lease: `renew` resets it, and a consumer whose
entry stayed idle longer than its own `lease_s` is taken over by the next
`claim` (Redis counts the deliveries: that is `Claim.attempt`). Each run
writes a fresh token to the job, and updates carrying an older one are
refused, so a run that was taken over cannot overwrite its successor.
Key layout and scripts: jobs_lua.py. A script is given every key it touches:
where those keys are named by data (a job's key, queue and deliveries, the
entry a claim takes, the deliveries due), that data is read first and the
script checks it again before acting.
"""
from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.store.base import StoreDown
from gateway.store.jobs import Claim, Delivery, JobRecord, Jobs
from gateway.store.redis.base import Pool, Script, talking
from gateway.store.redis.jobs_lua import (
    CLAIM_ENTRY,
    CLAIM_JOB,
    CREATE,
    DELETE,
    DONE,
    EXPIRING,
    FORGET,
    OUTBOX_CLAIM,
    RENEW,
    SAVE,
    UPDATE,
)
from gateway.store.redis.paging import GONE, lex_page


class RedisJobs(Jobs):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._p = pool.prefix
        self._create, self._update, self._delete = Script(CREATE), Script(UPDATE), Script(DELETE)
        self._entry, self._take, self._renew = Script(CLAIM_ENTRY), Script(CLAIM_JOB), Script(RENEW)
        self._done, self._expiring, self._forget = Script(DONE), Script(EXPIRING), Script(FORGET)
        self._outbox, self._save = Script(OUTBOX_CLAIM), Script(SAVE)

    # -- jobs ------------------------------------------------------------------

    async def create(self, job: JobRecord, queue: str) -> None:
        p = self._p
        # kept: a job answered as created must outlive its primary (Redis Cluster failover)
        await self._pool.run_kept(self._create,
                             [p + "job:" + job.id, p + "videos:" + job.key, p + "queue:" + queue, p + "videos:expiry"],
                             [job.id, job.key, job.status, job.data, _opt(job.expires_at), queue, p + "queued"])

    async def get(self, job_id: str) -> JobRecord | None:
        with talking():
            data, status, key, expires_at = await self._redis.hmget(
                self._p + "job:" + job_id, "data", "status", "key", "expires_at")
        if data is None:
            return None
        return JobRecord(job_id, key.decode(), status.decode(), data, _int(expires_at))

    async def page(self, key: str, after: str | None, limit: int,
                   order: str) -> tuple[list[JobRecord], bool]:
        def made(job_id: str, values: list[Any]) -> Any:
            data, status, expires_at = values
            return GONE if data is None else JobRecord(job_id, key, status.decode(), data, _int(expires_at))
        return await lex_page(self._redis, self._p + "videos:" + key, after, limit, order,
                              lambda job_id: self._p + "job:" + job_id, ("data", "status", "expires_at"), made)

    async def update(self, job: JobRecord, token: str | None = None,
                     deliveries: list[Delivery] | None = None) -> bool:
        p = self._p
        keys = [p + "job:" + job.id, p + "videos:expiry", p + "outbox", p + "videos:records"]
        args: list[Any] = [int(token is not None), token or "", job.data, job.status, _opt(job.expires_at), job.id]
        for d in deliveries or ():
            keys += (p + "delivery:" + d.id, p + "deliveries:" + d.job_id)
            args += (d.id, _dump(d), repr(float(d.next_at)), d.status)
        return bool(await self._pool.run(self._update, keys, args))

    async def delete(self, job_id: str) -> JobRecord | None:
        p, job = self._p, self._p + "job:" + job_id
        # The job's key and queue name the keys the script touches: read first, checked
        # again by the script (neither changes while a job lives: a retry is a rarity).
        for _ in range(_DELETE_TRIES):
            with talking():
                key, queue = await self._redis.hmget(job, "key", "queue")
            if key is None:
                return None
            keys = [job, p + "videos:expiry", p + "videos:" + key.decode(), p + "videos:records"]
            if queue is not None:
                keys.append(p + "queue:" + queue.decode())
            got = await self._pool.run(self._delete, keys, [job_id, key, b"" if queue is None else queue])
            if got is None:
                return None
            if got != 0:
                data, status, key, expires_at = got
                return JobRecord(job_id, key.decode(), status.decode(), data, _int(expires_at))
        raise StoreDown(f"Redis: job {job_id} kept changing while being deleted")

    # -- queues ----------------------------------------------------------------

    async def claim(self, queue: str, consumer: str, lease_s: float) -> Claim | None:
        token = secrets.token_hex(16)
        lease_ms = max(1, round(lease_s * 1000))
        stream = self._p + "queue:" + queue
        # Two steps: the entry (now pending for this consumer), then the job it names,
        # whose key the first script could not be given. A crash between them leaves
        # the entry pending and idle, so another consumer takes it over once it is idle
        # past its lease (counted as a second attempt), as for a run that died.
        # Each turn drops a dead entry, or finds the entry taken by another consumer
        # meanwhile: it ends when the stream has no more to give.
        while True:
            got = await self._pool.run(self._entry, [stream], [consumer, lease_ms])
            if got is None:
                return None
            entry, job_id, attempt = got
            taken = await self._pool.run(self._take, [self._p + "job:" + job_id.decode(), stream],
                                         [consumer, token, queue, entry])
            if taken == 1:
                return Claim(queue, job_id.decode(), token, consumer, entry.decode(), int(attempt))
            # b"skip": its job was gone or finished, the entry is dropped; b"lost": the
            # run that held it renewed it in between, or another consumer took it over.

    async def renew(self, claim: Claim, lease_s: float) -> bool:
        # The lease is the entry's idle time: XCLAIM resets it. `lease_s` is not stored:
        # whoever claims next decides how long an idle run is given (its own lease_s).
        return bool(await self._pool.run(self._renew,
                                         [self._p + "job:" + claim.job_id, self._p + "queue:" + claim.queue],
                                         [claim.token, claim.consumer, claim.entry]))

    async def done(self, claim: Claim) -> None:
        await self._pool.run(self._done, [self._p + "job:" + claim.job_id, self._p + "queue:" + claim.queue],
                             [claim.token, claim.entry])

    async def queue_events(self) -> AsyncIterator[str]:
        # Pub/sub on its own connection from the jobs pool; get_message's own
        # timeout keeps an idle subscription from tripping the socket timeout.
        with talking():
            pubsub = self._redis.pubsub()
            await pubsub.subscribe(self._p + "queued")
        try:
            while True:
                with talking():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    yield message["data"].decode()
        finally:
            await pubsub.aclose()

    async def queue_depth(self, queue: str) -> int:
        with talking():
            return int(await self._redis.xlen(self._p + "queue:" + queue))

    async def queue_oldest(self, queue: str) -> float | None:
        # Stream ids begin with the milliseconds they were added at; finished entries are deleted.
        with talking():
            first = await self._redis.xrange(self._p + "queue:" + queue, count=1)
        return int(first[0][0].split(b"-")[0]) / 1000 if first else None

    # -- expiry ----------------------------------------------------------------

    async def expiring(self, now: float, limit: int) -> list[str]:
        ids = await self._pool.run(self._expiring, [self._p + "videos:expiry"], [repr(float(now)), max(0, limit)])
        return [i.decode() for i in ids]

    async def forget(self, before: float, limit: int) -> list[str]:
        p = self._p
        # What names the keys (each job's key and delivery ids) is read first; the
        # script re-checks it per job and leaves a job that changed for the next call.
        with talking():
            ids = await self._redis.zrangebyscore(p + "videos:records", "-inf", "(" + repr(float(before)),
                                                  start=0, num=max(0, limit))
            if not ids:
                return []
            trip = self._redis.pipeline(transaction=False)
            for i in ids:
                trip.hget(p + "job:" + i.decode(), "key")
                trip.lrange(p + "deliveries:" + i.decode(), 0, -1)
            read = await trip.execute()
        keys = [p + "videos:records", p + "outbox", p + "videos:expiry"]
        args: list[Any] = [repr(float(before))]
        for n, i in enumerate(ids):
            job_id, key, sent = i.decode(), read[2 * n], read[2 * n + 1]
            keys.append(p + "job:" + job_id)
            if key is not None:
                keys.append(p + "videos:" + key.decode())
            keys.append(p + "deliveries:" + job_id)
            keys += (p + "delivery:" + d.decode() for d in sent)
            args += (i, int(key is not None), key or b"", len(sent), *sent)
        gone = await self._pool.run(self._forget, keys, args)
        return [i.decode() for i in gone]

    # -- the webhook outbox ----------------------------------------------------

    async def outbox_claim(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        # The ids due are read first, to name their deliveries' keys; the script takes
        # only those still due (another sender may have taken some meanwhile).
        with talking():
            ids = await self._redis.zrangebyscore(self._p + "outbox", "-inf", repr(float(now)),
                                                  start=0, num=max(0, limit))
        if not ids:
            return []
        got = await self._pool.run(self._outbox,
                                   [self._p + "outbox", *(self._p + "delivery:" + i.decode() for i in ids)],
                                   [repr(float(now)), repr(float(now + lease_s)), *ids])
        return [_load(j) for j in got]

    async def outbox_save(self, delivery: Delivery) -> None:
        p = self._p
        await self._pool.run(self._save, [p + "delivery:" + delivery.id, p + "deliveries:" + delivery.job_id,
                                          p + "outbox"],
                             [delivery.id, _dump(delivery), repr(float(delivery.next_at)), delivery.status])

    async def deliveries(self, job_id: str) -> list[Delivery]:
        with talking():
            ids = await self._redis.lrange(self._p + "deliveries:" + job_id, 0, -1)
            found = await self._redis.mget([self._p + "delivery:" + i.decode() for i in ids]) if ids else []
        return [_load(j) for j in found if j is not None]


_DELETE_TRIES = 8


def _opt(n: int | None) -> str:
    return "" if n is None else str(int(n))


def _int(raw: bytes | None) -> int | None:
    return int(raw) if raw else None


def _dump(d: Delivery) -> bytes:
    # The body base64'd: JSON has no bytes, and it must come back byte for byte (it is signed).
    return orjson.dumps({"id": d.id, "event_id": d.event_id, "url": d.url,
                         "body": base64.b64encode(d.body).decode(), "job_id": d.job_id,
                         "attempts": d.attempts, "next_at": d.next_at, "status": d.status,
                         "history": d.history})


def _load(raw: bytes) -> Delivery:
    d = orjson.loads(raw)
    return Delivery(d["id"], d["event_id"], d["url"], base64.b64decode(d["body"]), d["job_id"],
                    d["attempts"], d["next_at"], d["status"], d["history"])
