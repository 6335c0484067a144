"""The response cache of the Redis store: one STRING per answer, `cache:<key>`,
expiring by itself; shared by every replica."""
from __future__ import annotations

import math

from gateway.store.cache import Cache
from gateway.store.redis.base import Pool, talking


class RedisCache(Cache):
    def __init__(self, pool: Pool) -> None:
        self._redis = pool.redis
        self._p = pool.prefix + "cache:"

    async def get(self, key: str) -> bytes | None:
        with talking():
            return await self._redis.get(self._p + key)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        with talking():
            await self._redis.set(self._p + key, value, px=max(1, math.ceil(ttl_s * 1000)))
