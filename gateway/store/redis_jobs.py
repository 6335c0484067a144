"""Video jobs, their work queues and the webhook outbox on Redis: the job
methods of `Store` for `RedisStore`, which inherits this mixin.

A job is a HASH, listed per key in a ZSET ranged by lex (ids sort by
creation), and queued as an entry of a Redis Stream read by the consumer
group `workers`. A run holds its entry in the group's pending list; the
entry's idle time is its lease: `queue_renew` resets it, and a consumer
whose entry stayed idle longer than its own `lease_s` is taken over by the
next `queue_claim` (Redis counts the deliveries: that is `Claim.attempt`).
Each run writes a fresh token to the job, and updates carrying an older one
are refused, so a run that was taken over cannot overwrite its successor.
Key layout and scripts: redis_job_scripts.py.

Jobs use their own connection pool with a longer timeout than the request
path's: they are off the chat path, a claim may scan the pending list, and a
slow job call must not take connections the next admission needs.
"""
from __future__ import annotations

import base64
import os
import secrets
import time
from typing import Any, AsyncIterator

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from gateway.store import Claim, Delivery, JobRecord
from gateway.store import redis_job_scripts as lua

_CONNECTIONS = 16
_GROUP = "workers"


def _base():
    """redis.py's `_Script` and `_talking`, imported late: redis.py imports this module."""
    from gateway.store import redis as base
    return base


class RedisJobs:
    """The job methods of RedisStore (see the module docstring)."""
    _p: str
    _jobs: Redis

    def _init_jobs(self, url: str, timeout_s: float = 5.0) -> None:
        # No retries, as on the request path: a retried create could queue a job twice.
        pool = BlockingConnectionPool.from_url(url, max_connections=_CONNECTIONS, timeout=timeout_s,
                                               socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                               retry=Retry(NoBackoff(), 0), client_name="gateway-jobs",
                                               protocol=2)
        self._jobs = Redis.from_pool(pool)
        script = _base()._Script
        self._j_create, self._j_list, self._j_update = script(lua.CREATE), script(lua.LIST), script(lua.UPDATE)
        self._j_delete, self._j_claim, self._j_renew = script(lua.DELETE), script(lua.CLAIM), script(lua.RENEW)
        self._j_done, self._j_expiring = script(lua.DONE), script(lua.EXPIRING)
        self._j_forget = script(lua.FORGET)
        self._j_outbox, self._j_save = script(lua.OUTBOX_CLAIM), script(lua.SAVE)

    async def _close_jobs(self) -> None:
        await self._jobs.aclose()

    async def _jrun(self, script, keys: list[str], args: list[Any]) -> Any:
        with _base()._talking():
            try:
                return await self._jobs.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:      # a restarted or flushed Redis forgot the script
                await self._jobs.script_load(script.text)
                return await self._jobs.evalsha(script.sha, len(keys), *keys, *args)

    # -- jobs ------------------------------------------------------------------

    async def job_create(self, job: JobRecord, queue: str) -> None:
        p = self._p
        await self._jrun(self._j_create,
                         [p + "job:" + job.id, p + "videos:" + job.key, p + "queue:" + queue, p + "videos:expiry"],
                         [job.id, job.key, job.status, job.data, _opt(job.expires_at), queue, p + "queued"])

    async def job_get(self, job_id: str) -> JobRecord | None:
        with _base()._talking():
            data, status, key, expires_at = await self._jobs.hmget(
                self._p + "job:" + job_id, "data", "status", "key", "expires_at")
        if data is None:
            return None
        return JobRecord(job_id, key.decode(), status.decode(), data, _int(expires_at))

    async def job_list(self, key: str, after: str | None, limit: int,
                       order: str) -> tuple[list[JobRecord], bool]:
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
        flat = await self._jrun(self._j_list, [self._p + "videos:" + key],
                                [self._p, after or "", max(0, limit), order])
        jobs = [JobRecord(flat[i].decode(), key, flat[i + 2].decode(), flat[i + 1], _int(flat[i + 3]))
                for i in range(0, len(flat), 4)]
        return jobs[:limit], len(jobs) > limit

    async def job_update(self, job: JobRecord, token: str | None = None,
                         deliveries: list[Delivery] | None = None) -> bool:
        p = self._p
        keys = [p + "job:" + job.id, p + "videos:expiry", p + "outbox", p + "videos:records"]
        args: list[Any] = [int(token is not None), token or "", job.data, job.status, _opt(job.expires_at), job.id]
        for d in deliveries or ():
            keys += (p + "delivery:" + d.id, p + "deliveries:" + d.job_id)
            args += (d.id, _dump(d), repr(float(d.next_at)), d.status)
        return bool(await self._jrun(self._j_update, keys, args))

    async def job_delete(self, job_id: str) -> JobRecord | None:
        got = await self._jrun(self._j_delete, [self._p + "job:" + job_id, self._p + "videos:expiry"],
                               [self._p, job_id])
        if got is None:
            return None
        data, status, key, expires_at = got
        return JobRecord(job_id, key.decode(), status.decode(), data, _int(expires_at))

    async def jobs_expiring(self, now: float, limit: int) -> list[str]:
        ids = await self._jrun(self._j_expiring, [self._p + "videos:expiry"], [repr(float(now)), max(0, limit)])
        return [i.decode() for i in ids]

    async def jobs_forget(self, before: float, limit: int) -> list[str]:
        ids = await self._jrun(self._j_forget, [self._p + "videos:records", self._p + "outbox"],
                               [self._p, repr(float(before)), max(0, limit)])
        return [i.decode() for i in ids]

    # -- queues ----------------------------------------------------------------

    async def queue_claim(self, queue: str, consumer: str, lease_s: float) -> Claim | None:
        token = secrets.token_hex(16)
        lease_ms = max(1, round(lease_s * 1000))
        while True:     # the script stops after dropping a batch of dead entries: go on
            got = await self._jrun(self._j_claim, [self._p + "queue:" + queue],
                                   [self._p, consumer, lease_ms, token, queue])
            if got is None:
                return None
            if got:
                job_id, entry, attempt = got
                return Claim(queue, job_id.decode(), token, consumer, entry.decode(), int(attempt))

    async def queue_renew(self, claim: Claim, lease_s: float) -> bool:
        # The lease is the entry's idle time: XCLAIM resets it. `lease_s` is not stored:
        # whoever claims next decides how long an idle run is given (its own lease_s).
        return bool(await self._jrun(self._j_renew,
                                     [self._p + "job:" + claim.job_id, self._p + "queue:" + claim.queue],
                                     [claim.token, claim.consumer, claim.entry]))

    async def queue_done(self, claim: Claim) -> None:
        await self._jrun(self._j_done, [self._p + "job:" + claim.job_id, self._p + "queue:" + claim.queue],
                         [claim.token, claim.entry])

    async def queue_depth(self, queue: str) -> int:
        with _base()._talking():
            return int(await self._jobs.xlen(self._p + "queue:" + queue))

    # -- webhook outbox --------------------------------------------------------

    async def outbox_claim(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        got = await self._jrun(self._j_outbox, [self._p + "outbox"],
                               [self._p, repr(float(now)), max(0, limit), repr(float(now + lease_s))])
        return [_load(j) for j in got]

    async def outbox_save(self, delivery: Delivery) -> None:
        p = self._p
        await self._jrun(self._j_save, [p + "delivery:" + delivery.id, p + "deliveries:" + delivery.job_id,
                                        p + "outbox"],
                         [delivery.id, _dump(delivery), repr(float(delivery.next_at)), delivery.status])

    async def deliveries(self, job_id: str) -> list[Delivery]:
        with _base()._talking():
            ids = await self._jobs.lrange(self._p + "deliveries:" + job_id, 0, -1)
            found = await self._jobs.mget([self._p + "delivery:" + i.decode() for i in ids]) if ids else []
        return [_load(j) for j in found if j is not None]

    async def queue_oldest(self, queue: str) -> float | None:
        # Stream ids begin with the milliseconds they were added at; finished entries are deleted.
        with _base()._talking():
            first = await self._jobs.xrange(self._p + "queue:" + queue, count=1)
        return int(first[0][0].split(b"-")[0]) / 1000 if first else None

    async def queue_events(self) -> AsyncIterator[str]:
        # Pub/sub on its own connection from the jobs pool; get_message's own
        # timeout keeps an idle subscription from tripping the socket timeout.
        with _base()._talking():
            pubsub = self._jobs.pubsub()
            await pubsub.subscribe(self._p + "queued")
        try:
            while True:
                with _base()._talking():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    yield message["data"].decode()
        finally:
            await pubsub.aclose()

    # -- workers ---------------------------------------------------------------

    async def worker_beat(self, queue: str, worker: str, info: dict, ttl_s: float) -> None:
        # A ZSET of worker ids scored by when they lapse, and their info beside it:
        # the lapsed are trimmed on each beat, so neither grows with dead workers.
        until = time.time() + ttl_s
        live, about = self._p + "workers:" + queue, self._p + "workerinfo:" + queue
        with _base()._talking():
            pipe = self._jobs.pipeline(transaction=True)
            pipe.zadd(live, {worker: until})
            pipe.hset(about, worker, orjson.dumps({**info, "id": worker, "until": until}))
            pipe.zremrangebyscore(live, "-inf", time.time())
            await pipe.execute()

    async def workers(self, queue: str) -> list[dict]:
        live, about = self._p + "workers:" + queue, self._p + "workerinfo:" + queue
        with _base()._talking():
            ids = await self._jobs.zrangebyscore(live, time.time(), "+inf")
            infos = await self._jobs.hmget(about, ids) if ids else []
        return [orjson.loads(i) for i in infos if i is not None]

    async def secret(self, name: str) -> bytes:
        key = self._p + "secret:" + name
        with _base()._talking():
            # SET NX then GET in one trip: whichever replica came first made it.
            pipe = self._jobs.pipeline(transaction=False)
            pipe.set(key, os.urandom(32), nx=True)
            pipe.get(key)
            _, value = await pipe.execute()
        return value


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
