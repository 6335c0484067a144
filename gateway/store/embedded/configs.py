"""Config versions of the embedded store, as a table of its database file:
compare-and-set is one transaction, and the newest `KEPT` are kept."""
from __future__ import annotations

import sqlite3

from gateway.store.configs import KEPT, Configs, ConfigVersion
from gateway.store.embedded.database import Database

_VERSION = "version, at, author, summary, file_hash, document"


class EmbeddedConfigs(Configs):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def latest(self) -> ConfigVersion | None:
        def step(db: sqlite3.Connection) -> ConfigVersion | None:
            row = db.execute(f"SELECT {_VERSION} FROM config_versions ORDER BY version DESC LIMIT 1").fetchone()
            return None if row is None else ConfigVersion(row[0], row[1], row[2], row[3], row[4], bytes(row[5]))
        return await self._db.run(step)

    async def version(self, version: int) -> ConfigVersion | None:
        def step(db: sqlite3.Connection) -> ConfigVersion | None:
            row = db.execute(f"SELECT {_VERSION} FROM config_versions WHERE version = ?", (version,)).fetchone()
            return None if row is None else ConfigVersion(row[0], row[1], row[2], row[3], row[4], bytes(row[5]))
        return await self._db.run(step)

    async def versions(self, limit: int) -> list[ConfigVersion]:
        def step(db: sqlite3.Connection) -> list[ConfigVersion]:
            return [ConfigVersion(*row) for row in db.execute(
                "SELECT version, at, author, summary, file_hash FROM config_versions ORDER BY version DESC "
                "LIMIT ?", (limit,))]
        return await self._db.run(step)

    async def put(self, version: ConfigVersion, expected: int) -> int | None:
        def step(db: sqlite3.Connection) -> int | None:
            newest = db.execute("SELECT COALESCE(MAX(version), 0) FROM config_versions").fetchone()[0]
            if newest != expected:
                return None
            db.execute(f"INSERT INTO config_versions ({_VERSION}) VALUES (?, ?, ?, ?, ?, ?)",
                       (newest + 1, version.at, version.author, version.summary, version.file_hash,
                        version.document))
            db.execute("DELETE FROM config_versions WHERE version <= ?", (newest + 1 - KEPT,))
            return newest + 1
        return await self._db.run(step)

    async def seed(self, version: ConfigVersion) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            newest = db.execute("SELECT COALESCE(MAX(version), 0) FROM config_versions").fetchone()[0]
            if newest >= version.version:
                return False
            db.execute(f"INSERT INTO config_versions ({_VERSION}) VALUES (?, ?, ?, ?, ?, ?)",
                       (version.version, version.at, version.author, version.summary, version.file_hash,
                        version.document))
            return True
        return await self._db.run(step)
