"""Stored responses of the embedded store, as a table of its database file.
A record past its `expires_at` is never read; it is deleted a few at a time
by later puts, and all of them when the store starts, so the file does not
keep what no one can read."""
from __future__ import annotations

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

    async def put(self, record: ResponseRecord, ttl_s: float) -> None:
        def step(db: sqlite3.Connection) -> None:
            now = time.time()
            db.execute("INSERT OR REPLACE INTO responses (id, owner, created_at, expires_at, data) "
                       "VALUES (?, ?, ?, ?, ?)", (record.id, record.owner, record.created_at, now + ttl_s, record.data))
            _sweep(db, now, _SWEPT_PER_PUT)
        await self._db.run(step)

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


def _sweep(db: sqlite3.Connection, now: float, limit: int) -> int:
    return db.execute("DELETE FROM responses WHERE id IN "
                      "(SELECT id FROM responses WHERE expires_at <= ? LIMIT ?)", (now, limit)).rowcount
