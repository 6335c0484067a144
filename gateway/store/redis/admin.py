"""Sign-in sessions and the audit trail on Redis: a session is a key that
expires with it (`session:<token hash>`); the audit trail is a list, newest
first, trimmed to MOST_AUDIT (`audit`)."""
from __future__ import annotations

import time

import orjson

from gateway.store.admin import MOST_AUDIT, Audit, AuditEntry, Session, Sessions
from gateway.store.redis.base import Pool, talking


class RedisSessions(Sessions):
    def __init__(self, pool: Pool) -> None:
        self._redis = pool.redis
        self._p = pool.prefix + "session:"

    async def put(self, token_hash: str, session: Session) -> None:
        ttl_ms = max(1, int((session.expires_at - time.time()) * 1000))
        with talking():
            await self._redis.set(self._p + token_hash, orjson.dumps(
                [session.admin, session.name, session.role, session.expires_at]), px=ttl_ms)

    async def get(self, token_hash: str) -> Session | None:
        with talking():
            raw = await self._redis.get(self._p + token_hash)
        if raw is None:
            return None
        session = Session(*orjson.loads(raw))
        return session if session.expires_at > time.time() else None

    async def delete(self, token_hash: str) -> None:
        with talking():
            await self._redis.delete(self._p + token_hash)


class RedisAudit(Audit):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._key = pool.prefix + "audit"

    async def add(self, entry: AuditEntry) -> None:
        row = orjson.dumps([entry.at, entry.actor, entry.role, entry.action, entry.target, entry.status,
                            entry.source])
        await self._pool.transaction(self._key, lambda pipe: (pipe.lpush(self._key, row),
                                                              pipe.ltrim(self._key, 0, MOST_AUDIT - 1)))

    async def recent(self, limit: int, before: float | None = None) -> list[AuditEntry]:
        with talking():
            raw = await self._redis.lrange(self._key, 0, MOST_AUDIT - 1) if before is not None else \
                await self._redis.lrange(self._key, 0, limit - 1)
        entries = [AuditEntry(*orjson.loads(r)) for r in raw]
        if before is not None:
            entries = [e for e in entries if e.at < before]
        return entries[:limit]
