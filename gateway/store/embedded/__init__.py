"""The embedded store: one process's state in memory and four SQLite files under
`state.data_dir` (`spend.sqlite3` for the ledger, `requests.sqlite3` for the
request log, `admin.sqlite3` for sign-in sessions and the audit trail,
`jobs.sqlite3` for the rest).
Exact for one process; to share limits between processes or replicas, use Redis."""
from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from gateway.store.base import Store
from gateway.store.embedded.admin import SCHEMA as ADMIN_SCHEMA
from gateway.store.embedded.admin import EmbeddedAudit, EmbeddedSessions
from gateway.store.embedded.batches import EmbeddedBatchLines
from gateway.store.embedded.cache import EmbeddedCache
from gateway.store.embedded.configs import EmbeddedConfigs
from gateway.store.embedded.database import Database
from gateway.store.embedded.files import EmbeddedFileRecords
from gateway.store.embedded.jobs import EmbeddedJobs
from gateway.store.embedded.ledger import EmbeddedLedger
from gateway.store.embedded.limits import EmbeddedLimits
from gateway.store.embedded.requests import SCHEMA as REQUESTS_SCHEMA
from gateway.store.embedded.requests import EmbeddedRequests
from gateway.store.embedded.responses import EmbeddedResponses
from gateway.store.embedded.workers import EmbeddedWorkers


class EmbeddedStore(Store):
    def __init__(self, data_dir: str | Path) -> None:
        self._db = Database(Path(data_dir) / "jobs.sqlite3")
        self.ledger = self._ledger = EmbeddedLedger(Path(data_dir) / "spend.sqlite3")
        self.limits = EmbeddedLimits(self._ledger)
        self.cache = EmbeddedCache()
        self.jobs = EmbeddedJobs(self._db)
        self.configs = EmbeddedConfigs(self._db)
        self.workers = EmbeddedWorkers(self._db)
        self.responses = self._responses = EmbeddedResponses(self._db)
        self.files = EmbeddedFileRecords(self._db)
        self.batches = EmbeddedBatchLines(self._db)
        self._requests_db = Database(Path(data_dir) / "requests.sqlite3", REQUESTS_SCHEMA, "gateway-requests")
        self.requests = EmbeddedRequests(self._requests_db)
        self._admin_db = Database(Path(data_dir) / "admin.sqlite3", ADMIN_SCHEMA, "gateway-admin")
        self.sessions = EmbeddedSessions(self._admin_db)
        self.audit = EmbeddedAudit(self._admin_db)

    async def start(self) -> None:
        await self._ledger.start()
        await self._responses.sweep()   # those that expired while no gateway ran

    async def close(self) -> None:
        await self._ledger.close()
        self._db.close()
        self._requests_db.close()
        self._admin_db.close()

    async def ping(self) -> bool:
        return True

    async def secret(self, name: str) -> bytes:
        def step(db: sqlite3.Connection) -> bytes:
            db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, secrets.token_bytes(32)))
            return bytes(db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])
        return await self._db.run(step)
