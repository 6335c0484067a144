"""Sign-in sessions and the audit trail in the embedded store's database file,
so every `--workers N` process sees the same ones."""
from __future__ import annotations

import sqlite3
import time

from gateway.store.admin import MOST_AUDIT, Audit, AuditEntry, Session, Sessions
from gateway.store.embedded.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS admin_sessions (
    token_hash TEXT PRIMARY KEY, admin TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, status INTEGER NOT NULL, source TEXT NOT NULL);
"""


class EmbeddedSessions(Sessions):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, token_hash: str, session: Session) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO admin_sessions VALUES (?, ?, ?, ?, ?)",
                       (token_hash, session.admin, session.name, session.role, session.expires_at))
            db.execute("DELETE FROM admin_sessions WHERE expires_at < ?", (time.time(),))
        await self._db.run(step)

    async def get(self, token_hash: str) -> Session | None:
        def step(db: sqlite3.Connection) -> Session | None:
            row = db.execute("SELECT admin, name, role, expires_at FROM admin_sessions WHERE token_hash = ?",
                             (token_hash,)).fetchone()
            return Session(*row) if row is not None and row[3] > time.time() else None
        return await self._db.run(step)

    async def delete(self, token_hash: str) -> None:
        await self._db.run(lambda db: db.execute("DELETE FROM admin_sessions WHERE token_hash = ?", (token_hash,)))


class EmbeddedAudit(Audit):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, entry: AuditEntry) -> None:
        def step(db: sqlite3.Connection) -> None:
            cur = db.execute("INSERT INTO audit (at, actor, role, action, target, status, source) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (entry.at, entry.actor, entry.role, entry.action,
                                                              entry.target, entry.status, entry.source))
            db.execute("DELETE FROM audit WHERE seq <= ?", ((cur.lastrowid or 0) - MOST_AUDIT,))
        await self._db.run(step)

    async def recent(self, limit: int, before: float | None = None) -> list[AuditEntry]:
        def step(db: sqlite3.Connection) -> list[AuditEntry]:
            rows = db.execute("SELECT at, actor, role, action, target, status, source FROM audit "
                              "WHERE at < ? ORDER BY seq DESC LIMIT ?",
                              (before if before is not None else float("inf"), limit)).fetchall()
            return [AuditEntry(*r) for r in rows]
        return await self._db.run(step)
