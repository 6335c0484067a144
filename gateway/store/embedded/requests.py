"""The request log of the embedded store: a SQLite file of its own
(`requests.sqlite3` under `state.data_dir`) with a thread of its own, so a
batch of records or an Overview query never waits behind video jobs or stored
responses, nor they behind it.

A record is a row: the columns a query filters on, and the whole record as
JSON. Stats are a row per (width, bucket, model, provider) with its counters
as JSON, added to in the same transaction as the batch that counts in them
(`BEGIN IMMEDIATE`: the processes of `gateway serve --workers N` take turns).
"""
from __future__ import annotations

import functools
import re
import sqlite3
from typing import Any

import orjson

from gateway.store.embedded.database import Database
from gateway.store.request_stats import WIDTHS, Rollup, add_into, kept_ms, rollup
from gateway.store.requests import DAY_MS, BadCursor, RequestFilter, RequestPage, RequestRecord, Requests, Retention

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, id TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL,
    provider TEXT NOT NULL, status INTEGER NOT NULL, record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS requests_by_at ON requests (at);
CREATE INDEX IF NOT EXISTS requests_by_key ON requests (key_id, at);
CREATE INDEX IF NOT EXISTS requests_by_id ON requests (id);
CREATE TABLE IF NOT EXISTS request_stats (
    width INTEGER NOT NULL, start INTEGER NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
    counts BLOB NOT NULL, PRIMARY KEY (width, start, model, provider));
"""
# Deleted per transaction: other processes' batches wait for no more than that.
_DELETED_PER_STEP = 10_000
_CURSOR = re.compile(r"^(\d{1,15})-(\d{1,19})$")      # "<at_ms>-<seq>"


class EmbeddedRequests(Requests):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, records: list[RequestRecord], retention: Retention) -> None:
        if records:
            await self._db.run(functools.partial(_write, records=records))

    async def query(self, f: RequestFilter) -> RequestPage:
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("key_id", f.key), ("model", f.model), ("provider", f.provider),
                              ("status", f.status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if f.status_class is not None:
            where.append("status BETWEEN ? AND ?")
            args += (f.status_class * 100, f.status_class * 100 + 99)
        if f.since_ms is not None:
            where.append("at >= ?")
            args.append(f.since_ms)
        if f.until_ms is not None:
            where.append("at < ?")
            args.append(f.until_ms)
        if f.before is not None:
            m = _CURSOR.match(f.before)
            if m is None:
                raise BadCursor(f"not a cursor of this store: {f.before!r}")
            where.append("(at, seq) < (?, ?)")      # a row value: the index on (at) (and rowid) finds the place
            args += (int(m.group(1)), int(m.group(2)))
        sql = ("SELECT seq, at, record FROM requests" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY at DESC, seq DESC LIMIT ?")
        rows = await self._db.run(lambda db: db.execute(sql, (*args, f.limit)).fetchall())
        records = [RequestRecord.unpacked(orjson.loads(record)) for _, _, record in rows]
        last = rows[-1] if len(rows) == f.limit else None
        return RequestPage(records, None if last is None else f"{last[1]}-{last[0]}")

    async def get(self, request_id: str) -> RequestRecord | None:
        def step(db: sqlite3.Connection) -> Any:
            return db.execute("SELECT record FROM requests WHERE id = ? ORDER BY at DESC, seq DESC LIMIT 1",
                              (request_id,)).fetchone()
        row = await self._db.run(step)
        return None if row is None else RequestRecord.unpacked(orjson.loads(row[0]))

    async def rollups(self, width: int, since_ms: int, until_ms: int) -> list[Rollup]:
        def step(db: sqlite3.Connection) -> list[Any]:
            return db.execute("SELECT start, model, provider, counts FROM request_stats "
                              "WHERE width = ? AND start >= ? AND start < ?", (width, since_ms, until_ms)).fetchall()
        return [Rollup(width, start, model, provider, orjson.loads(counts))
                for start, model, provider, counts in await self._db.run(step)]

    async def prune(self, retention: Retention, now_ms: int) -> int:
        cutoff = now_ms - retention.keep_days * DAY_MS
        deleted = 0
        while True:     # past keep_days
            n = await self._db.run(lambda db: db.execute(
                "DELETE FROM requests WHERE seq IN (SELECT seq FROM requests WHERE at < ? LIMIT ?)",
                (cutoff, _DELETED_PER_STEP)).rowcount)
            deleted += n
            if n < _DELETED_PER_STEP:
                break
        last = await self._db.run(functools.partial(_last_over_cap, max_rows=retention.max_rows))
        while last is not None:     # past max_rows: the oldest written go first
            n = await self._db.run(lambda db: db.execute(
                "DELETE FROM requests WHERE seq IN (SELECT seq FROM requests WHERE seq <= ? ORDER BY seq LIMIT ?)",
                (last, _DELETED_PER_STEP)).rowcount)
            deleted += n
            if n < _DELETED_PER_STEP:
                break
        await self._db.run(functools.partial(_prune_stats, now_ms=now_ms, keep_days=retention.keep_days))
        return deleted


def _write(db: sqlite3.Connection, records: list[RequestRecord]) -> None:
    db.executemany("INSERT INTO requests (at, id, key_id, model, provider, status, record) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(r.at_ms, r.id, r.key_id, r.model, r.provider, r.status, orjson.dumps(r.packed()))
                    for r in records])
    for (width, start, model, provider), counts in rollup(records).items():
        have = db.execute("SELECT counts FROM request_stats WHERE width = ? AND start = ? AND model = ? "
                          "AND provider = ?", (width, start, model, provider)).fetchone()
        if have is not None:
            counts = add_into(orjson.loads(have[0]), counts)
        db.execute("INSERT OR REPLACE INTO request_stats (width, start, model, provider, counts) "
                   "VALUES (?, ?, ?, ?, ?)",
                   (width, start, model, provider, orjson.dumps(counts)))


def _last_over_cap(db: sqlite3.Connection, max_rows: int) -> int | None:
    """The newest seq that is past the cap, if any is."""
    low, high = db.execute("SELECT min(seq), max(seq) FROM requests").fetchone()
    if low is None or high - low + 1 <= max_rows:     # fewer seqs in the span than the cap: fewer rows too
        return None
    row = db.execute("SELECT seq FROM requests ORDER BY seq DESC LIMIT 1 OFFSET ?", (max_rows,)).fetchone()
    return None if row is None else int(row[0])


def _prune_stats(db: sqlite3.Connection, now_ms: int, keep_days: int) -> None:
    for width in WIDTHS:
        db.execute("DELETE FROM request_stats WHERE width = ? AND start < ?",
                   (width, now_ms - kept_ms(width, keep_days) - width * 1000))
