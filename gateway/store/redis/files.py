"""Files' records on Redis, shared by every replica.

Keys (under the store's prefix; on Redis Cluster all under the `files` hash
tag, cluster.py, so each change is one transaction on one node):
  file:<id>                   HASH  owner, purpose, filename, size, created_at,
                                    expires_at ("" for none), lines, endpoint
  files:<owner>               ZSET  the owner's file ids (score 0; ranged by lex:
                                    ids sort by creation)
  files:<owner>:<purpose>     ZSET  the same, for one purpose (what `purpose=` lists)
  files:expiry                ZSET  file id, scored by expires_at

A record never changes once written, so what a delete reads first (its owner
and purpose, which name its lists) still holds when the transaction runs: no
script is needed, MULTI/EXEC makes each change whole.
"""
from __future__ import annotations

from typing import Any

from gateway.store.files import FileRecord, FileRecords
from gateway.store.redis.base import Pool, talking
from gateway.store.redis.paging import GONE, lex_page

_FIELDS = ("owner", "purpose", "filename", "size", "created_at", "expires_at", "lines", "endpoint")


class RedisFileRecords(FileRecords):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._p = pool.prefix

    def _lists(self, owner: str, purpose: str) -> tuple[str, str]:
        return self._p + "files:" + owner, self._p + "files:" + owner + ":" + purpose

    async def create(self, record: FileRecord) -> None:
        key = self._p + "file:" + record.id
        mine, of_purpose = self._lists(record.owner, record.purpose)

        def fill(trip) -> None:
            trip.hset(key, mapping={"owner": record.owner, "purpose": record.purpose, "filename": record.filename,
                                    "size": record.size, "created_at": record.created_at,
                                    "expires_at": "" if record.expires_at is None else record.expires_at,
                                    "lines": record.lines, "endpoint": record.endpoint})
            trip.zadd(mine, {record.id: 0})
            trip.zadd(of_purpose, {record.id: 0})
            if record.expires_at is not None:
                trip.zadd(self._p + "files:expiry", {record.id: record.expires_at})
        await self._pool.transaction(key, fill)

    async def get(self, file_id: str) -> FileRecord | None:
        with talking():
            values = await self._redis.hmget(self._p + "file:" + file_id, _FIELDS)
        return _record(file_id, values)

    async def page(self, owner: str, purpose: str | None, after: str | None, limit: int, order: str,
                   now: float) -> tuple[list[FileRecord], bool]:
        mine, of_purpose = self._lists(owner, purpose or "")

        def made(file_id: str, values: list[Any]) -> Any:
            record = _record(file_id, values)
            return GONE if record is None else None if record.expired(now) else record
        return await lex_page(self._redis, of_purpose if purpose is not None else mine, after, limit, order,
                              lambda file_id: self._p + "file:" + file_id, _FIELDS, made)

    async def delete(self, file_id: str) -> bool:
        key, expiry = self._p + "file:" + file_id, self._p + "files:expiry"
        with talking():
            owner, purpose = await self._redis.hmget(key, "owner", "purpose")
        if owner is None:
            # No record: its expiry entry, if one was left, goes too (else the sweep would see it forever).
            with talking():
                await self._redis.zrem(expiry, file_id)
            return False
        mine, of_purpose = self._lists(owner.decode(), purpose.decode())

        def fill(trip) -> None:
            trip.delete(key)
            trip.zrem(mine, file_id)
            trip.zrem(of_purpose, file_id)
            trip.zrem(expiry, file_id)
        deleted, *_ = await self._pool.transaction(key, fill)
        return bool(deleted)

    async def expired(self, now: float, limit: int) -> list[str]:
        with talking():
            ids = await self._redis.zrangebyscore(self._p + "files:expiry", "-inf", repr(float(now)),
                                                  start=0, num=max(0, limit))
        return [i.decode() for i in ids]


def _record(file_id: str, values: list[bytes | None]) -> FileRecord | None:
    owner, purpose, filename, size, created_at, expires_at, lines, endpoint = values
    if owner is None or purpose is None or filename is None:
        return None
    return FileRecord(file_id, owner.decode(), purpose.decode(), filename.decode(), int(size or 0),
                      int(created_at or 0), int(expires_at) if expires_at else None, int(lines or 0),
                      (endpoint or b"").decode())
