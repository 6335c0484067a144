"""Files' records on Redis, shared by every replica.

Keys (under the store's prefix; on Redis Cluster all under the `files` hash
tag, cluster.py, so each change is one step on one node):
  file:<id>                   HASH  owner, purpose, filename, size, created_at,
                                    expires_at ("" for none), lines, endpoint
  files:<owner>               ZSET  the owner's file ids (score 0; ranged by lex:
                                    ids sort by creation)
  files:<owner>:<purpose>     ZSET  the same, for one purpose (what `purpose=` lists)
  files:expiry                ZSET  file id, scored by expires_at

A record is made by one script (CREATE), so that on Redis Cluster its answer can
wait until a replica has it too (`run_kept`): an upload answered 200 is not lost
to a failover. It never changes once written, so what a delete reads first (its
owner and purpose, which name its lists) still holds when the transaction runs:
MULTI/EXEC makes a delete whole.
"""
from __future__ import annotations

from typing import Any

from gateway.store.files import FileRecord, FileRecords
from gateway.store.redis.base import Pool, Script, talking
from gateway.store.redis.paging import GONE, lex_page

_FIELDS = ("owner", "purpose", "filename", "size", "created_at", "expires_at", "lines", "endpoint")

# KEYS: file:<id>, files:<owner>, files:<owner>:<purpose>, files:expiry
# ARGV: id, then _FIELDS' values in order (expires_at "" for none)
CREATE = r"""
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'purpose', ARGV[3], 'filename', ARGV[4], 'size', ARGV[5],
           'created_at', ARGV[6], 'expires_at', ARGV[7], 'lines', ARGV[8], 'endpoint', ARGV[9])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1]) end
return 1
"""


class RedisFileRecords(FileRecords):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._p = pool.prefix
        self._create = Script(CREATE)

    def _lists(self, owner: str, purpose: str) -> tuple[str, str]:
        return self._p + "files:" + owner, self._p + "files:" + owner + ":" + purpose

    async def create(self, record: FileRecord) -> None:
        mine, of_purpose = self._lists(record.owner, record.purpose)
        keys = [self._p + "file:" + record.id, mine, of_purpose, self._p + "files:expiry"]
        await self._pool.run_kept(self._create, keys, [
            record.id, record.owner, record.purpose, record.filename, record.size, record.created_at,
            "" if record.expires_at is None else record.expires_at, record.lines, record.endpoint])

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
