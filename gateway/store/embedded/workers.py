"""Live workers of the embedded store, as a table of its database file: a
beat writes a worker's row and drops those that lapsed."""
from __future__ import annotations

import sqlite3
import time

import orjson

from gateway.store.embedded.database import Database
from gateway.store.workers import Workers


class EmbeddedWorkers(Workers):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def beat(self, queue: str, worker: str, info: dict, ttl_s: float) -> None:
        def step(db: sqlite3.Connection) -> None:
            now = time.time()
            db.execute("INSERT OR REPLACE INTO workers (queue, id, until, info) VALUES (?, ?, ?, ?)",
                       (queue, worker, now + ttl_s, orjson.dumps({**info, "id": worker, "until": now + ttl_s})))
            db.execute("DELETE FROM workers WHERE until < ?", (now,))
        await self._db.run(step)

    async def live(self, queue: str) -> list[dict]:
        def step(db: sqlite3.Connection) -> list[dict]:
            return [orjson.loads(r[0]) for r in db.execute(
                "SELECT info FROM workers WHERE queue = ? AND until >= ? ORDER BY id", (queue, time.time()))]
        return await self._db.run(step)
