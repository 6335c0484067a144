"""Stored responses of the embedded store, as a table of its database file.
A record past its `expires_at` is never read; it is deleted a few at a time
by later puts, and all of them when the store starts, so the file does not
keep what no one can read.

Puts that arrive while a write is under way wait for the next one and go
together, in one transaction and one trip to the file's thread: a put still
returns only once its record is in the file, but under load many share the
cost (a trip and a commit are ~35 µs of CPU each)."""
from __future__ import annotations

import asyncio
import functools
import sqlite3
import time

from gateway.store.embedded.database import Database
from gateway.store.responses import ResponseRecord, Responses

# Expired records deleted per put: more than one, so the backlog shrinks faster than puts add to it,
# and few, so one put does not pay for freeing many multi-MB records.
_SWEPT_PER_PUT = 4
_SWEPT_PER_STEP = 100   # at start: a step at a time, so other processes sharing the file are not held up


class EmbeddedResponses(Responses):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[tuple[ResponseRecord, float, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def put(self, record: ResponseRecord, ttl_s: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, ttl_s, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        await done

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            rows = [(r.id, r.owner, r.created_at, ttl, r.data) for r, ttl, _ in batch]
            try:
                await self._db.run(functools.partial(_write, rows=rows))
            except Exception as e:      # StoreDown (a broken disk) for every put of the batch
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(e)
            else:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def get(self, response_id: str) -> ResponseRecord | None:
        def step(db: sqlite3.Connection) -> ResponseRecord | None:
            row = db.execute("SELECT owner, created_at, data FROM responses WHERE id = ? AND expires_at > ?",
                             (response_id, time.time())).fetchone()
            return None if row is None else ResponseRecord(response_id, row[0], row[1], row[2])
        return await self._db.run(step)

    async def delete(self, response_id: str) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT expires_at FROM responses WHERE id = ?", (response_id,)).fetchone()
            if row is None:
                return False
            db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            return bool(row[0] > time.time())
        return await self._db.run(step)

    async def sweep(self) -> None:
        """Delete every expired record."""
        while await self._db.run(lambda db: _sweep(db, time.time(), _SWEPT_PER_STEP)) == _SWEPT_PER_STEP:
            pass


def _write(db: sqlite3.Connection, rows: list[tuple[str, str, int, float, bytes]]) -> None:
    """Records as (id, owner, created_at, ttl_s, data); expiry counts from now."""
    now = time.time()
    db.executemany("INSERT OR REPLACE INTO responses (id, owner, created_at, expires_at, data) VALUES (?, ?, ?, ?, ?)",
                   [(rid, owner, created, now + ttl, data) for rid, owner, created, ttl, data in rows])
    _sweep(db, now, _SWEPT_PER_PUT * len(rows))


def _sweep(db: sqlite3.Connection, now: float, limit: int) -> int:
    return db.execute("DELETE FROM responses WHERE id IN "
                      "(SELECT id FROM responses WHERE expires_at <= ? LIMIT ?)", (now, limit)).rowcount
