"""Live workers on Redis: per queue, a ZSET of worker ids scored by when they
lapse (`workers:<queue>`) and a HASH of their info beside it
(`workerinfo:<queue>`); the lapsed are trimmed on each beat, so neither grows
with dead workers."""
from __future__ import annotations

import time

import orjson

from gateway.store.redis.base import Pool, talking
from gateway.store.workers import Workers


class RedisWorkers(Workers):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._p = pool.prefix

    async def beat(self, queue: str, worker: str, info: dict, ttl_s: float) -> None:
        until = time.time() + ttl_s
        live, about = self._p + "workers:" + queue, self._p + "workerinfo:" + queue
        await self._pool.transaction(live, lambda pipe: (
            pipe.zadd(live, {worker: until}),
            pipe.hset(about, worker, orjson.dumps({**info, "id": worker, "until": until})),
            pipe.zremrangebyscore(live, "-inf", time.time())))

    async def live(self, queue: str) -> list[dict]:
        live, about = self._p + "workers:" + queue, self._p + "workerinfo:" + queue
        with talking():
            ids = await self._redis.zrangebyscore(live, time.time(), "+inf")
            infos = await self._redis.hmget(about, ids) if ids else []
        return [orjson.loads(i) for i in infos if i is not None]
