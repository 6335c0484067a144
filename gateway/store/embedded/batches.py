"""Batches' results of the embedded store, as two tables of its database file
(database.py): `batch_lines`, a row per stored line, and `batch_tallies`, a row
per batch with a line stored or a stop asked. Each call is one transaction, so
a line and its place in the tally are written together (and `BEGIN IMMEDIATE`
makes processes sharing the file store each line once)."""
from __future__ import annotations

import sqlite3

from gateway.store.batches import BatchLines, Tally, check_stop
from gateway.store.embedded.database import Database


class EmbeddedBatchLines(BatchLines):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, batch_id: str, index: int, ok: bool, line: bytes, cost_nano: int = 0,
                  input_tokens: int = 0, output_tokens: int = 0) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            if not db.execute("INSERT OR IGNORE INTO batch_lines (batch, idx, ok, line) VALUES (?, ?, ?, ?)",
                              (batch_id, index, int(ok), bytes(line))).rowcount:
                return False
            db.execute("INSERT INTO batch_tallies (batch, done, failed, cost_nano, input_tokens, output_tokens) "
                       "VALUES (?, 1, ?, ?, ?, ?) ON CONFLICT (batch) DO UPDATE SET done = done + 1, "
                       "failed = failed + excluded.failed, cost_nano = cost_nano + excluded.cost_nano, "
                       "input_tokens = input_tokens + excluded.input_tokens, "
                       "output_tokens = output_tokens + excluded.output_tokens",
                       (batch_id, 0 if ok else 1, cost_nano, input_tokens, output_tokens))
            return True
        return await self._db.run(step)

    async def stored(self, batch_id: str, first: int, count: int) -> list[tuple[bool, bytes] | None]:
        if count <= 0:
            return []

        def step(db: sqlite3.Connection) -> list[tuple[bool, bytes] | None]:
            out: list[tuple[bool, bytes] | None] = [None] * count
            for idx, ok, line in db.execute(
                    "SELECT idx, ok, line FROM batch_lines WHERE batch = ? AND idx >= ? AND idx < ?",
                    (batch_id, first, first + count)):
                out[idx - first] = (bool(ok), bytes(line))
            return out
        return await self._db.run(step)

    async def tally(self, batch_id: str) -> Tally:
        def step(db: sqlite3.Connection) -> Tally:
            row = db.execute("SELECT done, failed, cost_nano, input_tokens, output_tokens, stop, stop_at "
                             "FROM batch_tallies WHERE batch = ?", (batch_id,)).fetchone()
            return Tally() if row is None else Tally(*row)
        return await self._db.run(step)

    async def stop(self, batch_id: str, reason: str, at: int) -> tuple[str, int]:
        check_stop(reason)

        def step(db: sqlite3.Connection) -> tuple[str, int]:
            db.execute("INSERT INTO batch_tallies (batch, stop, stop_at) VALUES (?, ?, ?) ON CONFLICT (batch) "
                       "DO UPDATE SET stop = excluded.stop, stop_at = excluded.stop_at "
                       "WHERE batch_tallies.stop IS NULL", (batch_id, reason, at))
            stop, stop_at = db.execute("SELECT stop, stop_at FROM batch_tallies WHERE batch = ?",
                                       (batch_id,)).fetchone()
            return stop, stop_at
        return await self._db.run(step)

    async def drop(self, batch_id: str) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM batch_lines WHERE batch = ?", (batch_id,))
            db.execute("DELETE FROM batch_tallies WHERE batch = ?", (batch_id,))
        await self._db.run(step)
