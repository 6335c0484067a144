"""Files' records of the embedded store, as a table of its database file
(database.py): each call is one transaction."""
from __future__ import annotations

import sqlite3
from typing import Any

from gateway.store.embedded.database import Database
from gateway.store.files import FileRecord, FileRecords

_COLUMNS = "id, owner, purpose, filename, size, created_at, expires_at, lines, endpoint"


class EmbeddedFileRecords(FileRecords):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, record: FileRecord) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute(f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.id, record.owner, record.purpose, record.filename, record.size, record.created_at,
                        record.expires_at, record.lines, record.endpoint))
        await self._db.run(step)

    async def get(self, file_id: str) -> FileRecord | None:
        def step(db: sqlite3.Connection) -> FileRecord | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
            return None if row is None else FileRecord(*row)
        return await self._db.run(step)

    async def page(self, owner: str, purpose: str | None, after: str | None, limit: int, order: str,
                   now: float) -> tuple[list[FileRecord], bool]:
        if order not in ("asc", "desc"):
            raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
        newest_first = order == "desc"
        sql = f"SELECT {_COLUMNS} FROM files WHERE owner = ?"
        args: list[Any] = [owner]
        if purpose is not None:
            sql += " AND purpose = ?"
            args.append(purpose)
        if after is not None:
            sql += " AND id < ?" if newest_first else " AND id > ?"
            args.append(after)
        sql += f" AND (expires_at IS NULL OR expires_at > ?) ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT ?"
        args += [now, max(0, limit) + 1]

        def step(db: sqlite3.Connection) -> tuple[list[FileRecord], bool]:
            rows = [FileRecord(*r) for r in db.execute(sql, args)]
            return rows[:limit], len(rows) > limit
        return await self._db.run(step)

    async def delete(self, file_id: str) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0
        return await self._db.run(step)

    async def expired(self, now: float, limit: int) -> list[str]:
        def step(db: sqlite3.Connection) -> list[str]:
            return [r[0] for r in db.execute(
                "SELECT id FROM files WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                (now, max(0, limit)))]
        return await self._db.run(step)
