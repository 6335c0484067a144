"""The request log on Redis, shared by every replica. Keys (under the prefix):

  requests:<day>                 STREAM, one entry per record (field `r`: the record as a JSON list), capped at
                                 `max_rows` (MAXLEN ~), expiring `keep_days` after the day ends
  requests:ids:<day>             HASH, request id -> entry id, for GET /admin/requests/{id}; expires with the day
  requests:days                  ZSET of the days that have a stream
  requests:stats:<width>:<ms>    HASH per bucket: [model, provider, counter] (JSON) -> count (request_stats.py),
                                 expiring with the bucket (a day for minutes, else keep_days)

A batch is one script call: it adds the records and their ids, and the batch's
counts to its buckets. The call is made whole, in RESP, on a worker thread, and
sent on a pipelined connection of the log's own (pipe.py): the event loop only
writes it and reads the one reply. The Overview reads the buckets
only (60, 96 or 30 HGETALLs in one pipeline). Queries of records walk the day
streams newest first (XREVRANGE), filtering as they go, and stop after
`_SCANNED_PER_QUERY` entries with a cursor to go on from, so a rare match costs
pages, never one unbounded call. Entries are in the order they were written,
which is within `flush_s` of the order requests ended.

Every call goes over the store's job pool (off the request path), as one
round trip where it can.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
from typing import Any

import orjson

from gateway.store.redis.base import Pool, Script, run_encoded, talking
from gateway.store.redis.pipe import Pipe, encode
from gateway.store.request_stats import Rollup, kept_ms, rollup
from gateway.store.requests import (
    DAY_MS,
    BadCursor,
    RequestFilter,
    RequestPage,
    RequestRecord,
    Requests,
    Retention,
    day_of,
)

# KEYS: requests:days, then each day's stream and ids, then each stats bucket's HASH
# ARGV: max_rows, n_days, per day (day, expire_at, n, then (request id, record) n times),
#       per bucket (expire_at_ms, n, then (field, count) n times)
# Returns 1.
_ADD = """
local maxlen = ARGV[1]
local at, k = 3, 2
for _ = 1, tonumber(ARGV[2]) do
  local stream, ids = KEYS[k], KEYS[k + 1]
  redis.call('ZADD', KEYS[1], 0, ARGV[at])
  local expire_at, n = ARGV[at + 1], tonumber(ARGV[at + 2])
  at = at + 3
  for _ = 1, n do
    local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'r', ARGV[at + 1])
    redis.call('HSET', ids, ARGV[at], id)
    at = at + 2
  end
  redis.call('EXPIREAT', stream, expire_at)
  redis.call('EXPIREAT', ids, expire_at)
  k = k + 2
end
for i = k, #KEYS do
  local until_ms, n = ARGV[at], tonumber(ARGV[at + 1])
  at = at + 2
  for _ = 1, n do
    redis.call('HINCRBY', KEYS[i], ARGV[at], ARGV[at + 1])
    at = at + 2
  end
  redis.call('PEXPIREAT', KEYS[i], until_ms)
end
return 1
"""
_SCANNED_PER_QUERY = 20_000     # entries one query reads at most
_CHUNK = 500                    # entries per XREVRANGE
_TRIMMED_PER_STEP = 10_000      # entries one prune step removes from a day
_CLOCK_SLACK_MS = 60_000        # a replica's clock may be this far ahead of Redis's (entry ids are Redis's)
_CURSOR = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{1,15}-\d{1,19})$")     # "<yyyymmdd>-<entry id>"


class RedisRequests(Requests):
    def __init__(self, pool: Pool, pipe: Pipe) -> None:
        self._pool = pool
        self._pipe = pipe
        self._add = Script(_ADD)
        self._redis = pool.redis
        self._p = pool.prefix + "requests:"
        self._tidy_at: dict[str, int] = {}      # HSCAN cursors of ids HASHes being tidied (prune)

    async def add(self, records: list[RequestRecord], retention: Retention) -> None:
        if not records:
            return
        # The JSON, the stats and the call itself on a worker thread: a batch of 250 is a few ms of
        # CPU the event loop need not hold.
        call = await asyncio.to_thread(_call, self._add.sha, self._p, records, retention)
        await run_encoded(self._pipe, self._add, call)

    async def _days(self) -> list[str]:
        """The days with a stream, newest first."""
        with talking():
            days = await self._redis.zrange(self._p + "days", 0, -1)
        return sorted((d.decode() for d in days), reverse=True)

    async def query(self, f: RequestFilter) -> RequestPage:
        cursor_day, cursor_id = None, None
        if f.before is not None:
            m = _CURSOR.match(f.before)
            if m is None:
                raise BadCursor(f"not a cursor of this store: {f.before!r}")
            cursor_day, cursor_id = f"{m.group(1)}-{m.group(2)}-{m.group(3)}", m.group(4)
        low_day = day_of(f.since_ms) if f.since_ms is not None else ""
        high_day = day_of(f.until_ms - 1) if f.until_ms is not None else "9999"
        lowest_id = "-" if f.since_ms is None else str(max(0, f.since_ms - _CLOCK_SLACK_MS))
        found: list[RequestRecord] = []
        scanned = 0
        for day in await self._days():
            if day < low_day or day > high_day or (cursor_day is not None and day > cursor_day):
                continue
            top = "(" + cursor_id if day == cursor_day and cursor_id is not None else "+"
            while True:
                with talking():
                    entries = await self._redis.xrevrange(self._p + day, max=top, min=lowest_id,
                                                          count=min(_CHUNK, _SCANNED_PER_QUERY - scanned))
                for entry_id, values in entries:
                    scanned += 1
                    r = RequestRecord.unpacked(orjson.loads(values[b"r"]))
                    if f.matches(r):
                        found.append(r)
                    if len(found) == f.limit or scanned >= _SCANNED_PER_QUERY:
                        return RequestPage(found, day.replace("-", "") + "-" + entry_id.decode())
                if len(entries) < _CHUNK:
                    break
                top = "(" + entries[-1][0].decode()
        return RequestPage(found, None)

    async def get(self, request_id: str) -> RequestRecord | None:
        days = await self._days()
        if not days:
            return None
        with talking():
            pipe = self._redis.pipeline(transaction=False)
            for day in days:
                pipe.hget(self._p + "ids:" + day, request_id)
            hits = await pipe.execute()
            for day, entry_id in zip(days, hits, strict=True):
                if entry_id is None:
                    continue
                entries = await self._redis.xrange(self._p + day, min=entry_id, max=entry_id, count=1)
                if entries:
                    return RequestRecord.unpacked(orjson.loads(entries[0][1][b"r"]))
        return None

    async def rollups(self, width: int, since_ms: int, until_ms: int) -> list[Rollup]:
        span = width * 1000
        starts = [s for s in range(since_ms - since_ms % span, until_ms, span) if s >= since_ms]
        if not starts:
            return []
        with talking():
            pipe = self._redis.pipeline(transaction=False)
            for start in starts:
                pipe.hgetall(f"{self._p}stats:{width}:{start}")
            tables = await pipe.execute()
        rows: dict[tuple[int, str, str], Rollup] = {}
        for start, table in zip(starts, tables, strict=True):
            for name, value in table.items():
                model, provider, counter = orjson.loads(name)
                row = rows.get((start, model, provider))
                if row is None:
                    row = rows[(start, model, provider)] = Rollup(width, start, model, provider)
                row.counts[counter] = int(value)
        return list(rows.values())

    async def prune(self, retention: Retention, now_ms: int) -> int:
        """Whole days past keep_days, then the oldest entries past max_rows; buckets expire by themselves."""
        p = self._p
        days = sorted(await self._days())       # oldest first
        first_kept = day_of(now_ms - retention.keep_days * DAY_MS)
        old = [d for d in days if d < first_kept]
        live = [d for d in days if d >= first_kept]
        with talking():
            pipe = self._redis.pipeline(transaction=False)
            for day in days:
                pipe.xlen(p + day)
            sizes = dict(zip(days, await pipe.execute(), strict=True))
        deleted = sum(sizes[d] for d in old)
        for day in old:
            await self._drop_day(day)
        excess = sum(sizes[d] for d in live) - retention.max_rows
        for day in live:
            if excess <= 0:
                break
            if sizes[day] <= excess and day != live[-1]:
                await self._drop_day(day)
                gone = sizes[day]
            else:
                gone = await self._trim_oldest(day, min(excess, _TRIMMED_PER_STEP))
            deleted += gone
            excess -= gone
        for day in live:
            await self._tidy_ids(day)
        return deleted

    async def _drop_day(self, day: str) -> None:
        await self._pool.transaction(self._p, lambda pipe: (pipe.delete(self._p + day, self._p + "ids:" + day),
                                                            pipe.zrem(self._p + "days", day)))
        self._tidy_at.pop(day, None)

    async def _trim_oldest(self, day: str, n: int) -> int:
        """Remove a day's `n` oldest entries and their ids."""
        with talking():
            entries = await self._redis.xrange(self._p + day, min="-", max="+", count=n)
            if not entries:
                return 0
            ids = [RequestRecord.unpacked(orjson.loads(values[b"r"])).id for _, values in entries]
            ms, seq = entries[-1][0].decode().split("-")
        await self._pool.transaction(self._p, lambda pipe: (
            pipe.hdel(self._p + "ids:" + day, *ids),
            pipe.xtrim(self._p + day, minid=f"{ms}-{int(seq) + 1}", approximate=False)))
        return len(entries)

    async def _tidy_ids(self, day: str) -> None:
        """Forget the ids of entries MAXLEN trimmed (a day past max_rows on its own), a bounded part per prune."""
        stream, ids = self._p + day, self._p + "ids:" + day
        with talking():
            pipe = self._redis.pipeline(transaction=False)
            pipe.xlen(stream)
            pipe.hlen(ids)
            pipe.xrange(stream, min="-", max="+", count=1)
            length, indexed, first = await pipe.execute()
            if indexed <= length + 1000 and day not in self._tidy_at:
                return
            oldest = _entry_key(first[0][0].decode()) if first else (1 << 62, 0)
            cursor = self._tidy_at.get(day, 0)
            for _ in range(_TRIMMED_PER_STEP // 1000):
                cursor, page = await self._redis.hscan(ids, cursor, count=1000)
                gone = [rid for rid, entry_id in page.items() if _entry_key(entry_id.decode()) < oldest]
                if gone:
                    await self._redis.hdel(ids, *gone)
                if cursor == 0:
                    break
        if cursor == 0:
            self._tidy_at.pop(day, None)
        else:
            self._tidy_at[day] = cursor


def _call(sha: str, p: str, records: list[RequestRecord], retention: Retention) -> bytes:
    """The EVALSHA of _ADD that writes `records`, in RESP."""
    by_day: dict[str, list[RequestRecord]] = {}
    day, day_from, day_to = "", 0, 0        # the last record's UTC day: a batch spans a second or so
    for r in records:
        if not day_from <= r.at_ms < day_to:
            day, day_from = day_of(r.at_ms), r.at_ms - r.at_ms % DAY_MS
            day_to = day_from + DAY_MS
        by_day.setdefault(day, []).append(r)
    keys: list[str] = [p + "days"]
    args: list[Any] = [retention.max_rows, len(by_day)]
    for day, rs in by_day.items():
        keys += (p + day, p + "ids:" + day)
        args += (day, _day_end_s(day) + retention.keep_days * 86_400, len(rs))
        for r in rs:
            args += (r.id, orjson.dumps(r.packed()))
    for (width, start, model, provider), counts in rollup(records).items():
        keys.append(f"{p}stats:{width}:{start}")
        args += (start + width * 1000 + kept_ms(width, retention.keep_days), len(counts))
        for name, n in counts.items():
            args += (_field(model, provider, name), n)
    return encode(["EVALSHA", sha, len(keys), *keys, *args])


def _field(model: str, provider: str, counter: str) -> bytes:
    # JSON, not a separator: a model name may contain any character.
    return orjson.dumps([model, provider, counter])


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _day_end_s(day: str) -> int:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return int(start.timestamp()) + 86_400
