"""The embedded store's durable file for everything but spend: video jobs,
their queues and webhook outbox, config versions, workers, secrets, stored
responses, files' records and running batches' results, in one SQLite file
(`jobs.sqlite3` under `state.data_dir`), so a restart loses none. The schema
only adds tables (`IF NOT EXISTS`), so a file an older gateway wrote gains the
new ones when opened.

Every step is one transaction; `BEGIN IMMEDIATE` takes the write lock up front,
so `gateway serve --workers N` processes sharing the file claim each job once.
SQLite calls run on one thread of their own (they block), never on the event
loop; none is on the chat path, and a Responses API request makes at most a
read and a write (its stored responses).
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.store.base import StoreDown

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL, data BLOB NOT NULL,
    expires_at INTEGER, expiry_swept INTEGER NOT NULL DEFAULT 0, token TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (key, id);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs (expiry_swept, expires_at);
CREATE TABLE IF NOT EXISTS queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, job_id TEXT NOT NULL UNIQUE,
    consumer TEXT NOT NULL DEFAULT '', lease_until REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    queued_at REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS queue_by_name ON queue (queue, seq);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL,
    status TEXT NOT NULL, next_at REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at);
CREATE INDEX IF NOT EXISTS outbox_by_job ON outbox (job_id);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS config_versions (
    version INTEGER PRIMARY KEY, at REAL NOT NULL, author TEXT NOT NULL, summary TEXT NOT NULL,
    file_hash TEXT NOT NULL, document BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
    queue TEXT NOT NULL, id TEXT NOT NULL, until REAL NOT NULL, info BLOB NOT NULL, PRIMARY KEY (queue, id));
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at REAL NOT NULL,
    data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS responses_by_expiry ON responses (expires_at);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, purpose TEXT NOT NULL, filename TEXT NOT NULL, size INTEGER NOT NULL,
    created_at INTEGER NOT NULL, expires_at INTEGER, lines INTEGER NOT NULL, endpoint TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS files_by_owner ON files (owner, id);
CREATE INDEX IF NOT EXISTS files_by_purpose ON files (owner, purpose, id);
CREATE INDEX IF NOT EXISTS files_by_expiry ON files (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS batch_lines (
    batch TEXT NOT NULL, idx INTEGER NOT NULL, ok INTEGER NOT NULL, line BLOB NOT NULL,
    PRIMARY KEY (batch, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batch_tallies (
    batch TEXT PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0, stop TEXT, stop_at INTEGER);
"""


class Database:
    """The file and the thread that talks to it (`schema`: another file's tables, e.g. the request log's)."""

    def __init__(self, path: Path, schema: str = _SCHEMA, name: str = "gateway-jobs") -> None:
        self.path = path
        self._schema = schema
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` in one transaction, on the file's thread."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)
        except sqlite3.Error as e:   # a full or broken disk: the store is down, as Redis would be
            raise StoreDown(f"{self.path.name}: {e}") from e

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: each step opens its own transaction below
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable across process crashes
            db.executescript(self._schema)
            self._db = db
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            out = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return out

    def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None
        self._pool.submit(shut).result(10)
        self._pool.shutdown(wait=True)
