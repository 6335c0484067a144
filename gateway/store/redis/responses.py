"""Stored responses on Redis: one HASH per response, `response:<id>` (owner,
created_at, data), expiring by itself; shared by every replica. Each call is
one round trip. Fields rather than one packed value: a multi-MB document is
sent and read back as it is, never copied to be packed or unpacked."""
from __future__ import annotations

import math

from gateway.store.redis.base import Pool, talking
from gateway.store.responses import ResponseRecord, Responses

_FIELDS = ("owner", "created_at", "data")


class RedisResponses(Responses):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._p = pool.prefix + "response:"

    async def put(self, record: ResponseRecord, ttl_s: float) -> None:
        key = self._p + record.id
        # MULTI/EXEC: no reader sees the new fields without their expiry
        await self._pool.transaction(key, lambda pipe: (
            pipe.hset(key, mapping={"owner": record.owner, "created_at": record.created_at, "data": record.data}),
            pipe.pexpire(key, max(1, math.ceil(ttl_s * 1000)))))

    async def get(self, response_id: str) -> ResponseRecord | None:
        with talking():
            owner, created_at, data = await self._redis.hmget(self._p + response_id, _FIELDS)
        if owner is None:
            return None
        return ResponseRecord(response_id, owner.decode(), int(created_at), data)

    async def delete(self, response_id: str) -> bool:
        with talking():
            return bool(await self._redis.delete(self._p + response_id))
