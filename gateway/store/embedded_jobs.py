"""Video jobs, their work queues and the webhook outbox of the embedded store:
one SQLite file (`jobs.sqlite3` under `state.data_dir`), so a restart loses no
job. Every step is one transaction; `BEGIN IMMEDIATE` takes the write lock up
front, so `gateway serve --workers N` processes sharing the file claim each
job once.

SQLite calls run on one thread of their own (they block), never on the event
loop. A job costs a handful of these per state change, none on the chat path.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

import orjson

from gateway.store import Claim, ConfigVersion, Delivery, JobRecord, StoreDown

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
"""
_LIVE = "status NOT IN ('completed', 'failed')"
_VERSION = "version, at, author, summary, file_hash, document"
CONFIG_VERSIONS_KEPT = 50


class JobsDb:
    """The jobs file and the thread that talks to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-jobs")
        self._db: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)
        except sqlite3.Error as e:   # a full or broken disk: the store is down, as Redis would be
            raise StoreDown(f"jobs database: {e}") from e

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # autocommit mode: each step opens its own transaction below
            db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: durable across process crashes
            db.executescript(_SCHEMA)
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


def delivery_json(d: Delivery) -> bytes:
    return orjson.dumps({"id": d.id, "event_id": d.event_id, "url": d.url, "body": d.body.decode("utf-8"),
                         "job_id": d.job_id, "attempts": d.attempts, "next_at": d.next_at,
                         "status": d.status, "history": d.history})


def delivery_of(raw: bytes | str) -> Delivery:
    x: dict[str, Any] = orjson.loads(raw)
    return Delivery(x["id"], x["event_id"], x["url"], x["body"].encode("utf-8"), x["job_id"], x["attempts"],
                    x["next_at"], x["status"], x["history"])


def _record(row: tuple) -> JobRecord:
    return JobRecord(row[0], row[1], row[2], bytes(row[3]), row[4])


_COLUMNS = "id, key, status, data, expires_at"


class EmbeddedJobs:
    """The job half of EmbeddedStore (see gateway/store/__init__.py for the contract)."""

    _jobs: JobsDb

    def _open_jobs(self, data_dir: str | os.PathLike[str]) -> None:
        self._jobs = JobsDb(Path(data_dir) / "jobs.sqlite3")

    async def job_create(self, job: JobRecord, queue: str) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                       (job.id, job.key, job.status, job.data, job.expires_at))
            db.execute("INSERT INTO queue (queue, job_id, queued_at) VALUES (?, ?, ?)", (queue, job.id, time.time()))
        await self._jobs.run(step)

    async def job_get(self, job_id: str) -> JobRecord | None:
        def step(db: sqlite3.Connection) -> JobRecord | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else _record(row)
        return await self._jobs.run(step)

    async def job_list(self, key: str, after: str | None, limit: int,
                       order: str) -> tuple[list[JobRecord], bool]:
        newest_first = order == "desc"
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE key = ?"
        args: list[Any] = [key]
        if after is not None:
            sql += " AND id < ?" if newest_first else " AND id > ?"
            args.append(after)
        sql += f" ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT ?"
        args.append(limit + 1)

        def step(db: sqlite3.Connection) -> tuple[list[JobRecord], bool]:
            rows = [_record(r) for r in db.execute(sql, args)]
            return rows[:limit], len(rows) > limit
        return await self._jobs.run(step)

    async def job_update(self, job: JobRecord, token: str | None = None,
                         deliveries: list[Delivery] | None = None) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            sql = f"UPDATE jobs SET status = ?, data = ?, expires_at = ? WHERE id = ? AND {_LIVE}"
            args: list[Any] = [job.status, job.data, job.expires_at, job.id]
            if token is not None:
                sql += " AND token = ?"
                args.append(token)
            if db.execute(sql, args).rowcount == 0:
                return False
            for d in deliveries or ():
                db.execute("INSERT INTO outbox (id, job_id, status, next_at, data) VALUES (?, ?, ?, ?, ?)",
                           (d.id, d.job_id, d.status, d.next_at, delivery_json(d)))
            return True
        return await self._jobs.run(step)

    async def job_delete(self, job_id: str) -> JobRecord | None:
        def step(db: sqlite3.Connection) -> JobRecord | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM queue WHERE job_id = ?", (job_id,))
            return _record(row)
        return await self._jobs.run(step)

    async def queue_claim(self, queue: str, consumer: str, lease_s: float) -> Claim | None:
        def step(db: sqlite3.Connection) -> Claim | None:
            now = time.time()
            while True:
                row = db.execute(
                    "SELECT seq, job_id, attempts FROM queue WHERE queue = ? AND (consumer = '' OR lease_until < ?) "
                    "ORDER BY seq LIMIT 1", (queue, now)).fetchone()
                if row is None:
                    return None
                seq, job_id, attempts = row
                token = secrets.token_hex(8)
                if db.execute(f"UPDATE jobs SET token = ? WHERE id = ? AND {_LIVE}",
                              (token, job_id)).rowcount == 0:
                    db.execute("DELETE FROM queue WHERE seq = ?", (seq,))   # deleted or finished meanwhile
                    continue
                db.execute("UPDATE queue SET consumer = ?, lease_until = ?, attempts = attempts + 1 WHERE seq = ?",
                           (consumer, now + lease_s, seq))
                return Claim(queue, job_id, token, consumer, str(seq), attempts + 1)
        return await self._jobs.run(step)

    async def queue_renew(self, claim: Claim, lease_s: float) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            return db.execute(
                f"UPDATE queue SET lease_until = ? WHERE job_id = ? AND EXISTS "
                f"(SELECT 1 FROM jobs WHERE id = ? AND token = ? AND {_LIVE})",
                (time.time() + lease_s, claim.job_id, claim.job_id, claim.token)).rowcount > 0
        return await self._jobs.run(step)

    async def queue_done(self, claim: Claim) -> None:
        def step(db: sqlite3.Connection) -> None:
            # Not when another run holds the job now (this one's lease lapsed): it is theirs to finish.
            db.execute(f"DELETE FROM queue WHERE job_id = ? AND NOT EXISTS "
                       f"(SELECT 1 FROM jobs WHERE id = ? AND token != ? AND {_LIVE})",
                       (claim.job_id, claim.job_id, claim.token))
        await self._jobs.run(step)

    async def queue_depth(self, queue: str) -> int:
        def step(db: sqlite3.Connection) -> int:
            return db.execute("SELECT COUNT(*) FROM queue WHERE queue = ?", (queue,)).fetchone()[0]
        return await self._jobs.run(step)

    async def queue_oldest(self, queue: str) -> float | None:
        def step(db: sqlite3.Connection) -> float | None:
            return db.execute("SELECT MIN(queued_at) FROM queue WHERE queue = ?", (queue,)).fetchone()[0]
        return await self._jobs.run(step)

    async def jobs_expiring(self, now: float, limit: int) -> list[str]:
        def step(db: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE expiry_swept = 0 AND expires_at IS NOT NULL AND expires_at <= ? "
                "LIMIT ?", (now, limit))]
            db.executemany("UPDATE jobs SET expiry_swept = 1 WHERE id = ?", [(i,) for i in ids])
            return ids
        return await self._jobs.run(step)

    async def jobs_forget(self, before: float, limit: int) -> list[str]:
        def step(db: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?", (before, limit))]
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                marks = ", ".join("?" for _ in chunk)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", chunk)
                db.execute(f"DELETE FROM outbox WHERE job_id IN ({marks})", chunk)
            return ids
        return await self._jobs.run(step)

    async def outbox_claim(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        def step(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute("SELECT seq, data FROM outbox WHERE status = 'pending' AND next_at <= ? "
                              "ORDER BY next_at, seq LIMIT ?", (now, limit)).fetchall()
            db.executemany("UPDATE outbox SET next_at = ? WHERE seq = ?", [(now + lease_s, r[0]) for r in rows])
            return [delivery_of(r[1]) for r in rows]
        return await self._jobs.run(step)

    async def outbox_save(self, delivery: Delivery) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute("UPDATE outbox SET status = ?, next_at = ?, data = ? WHERE id = ?",
                       (delivery.status, delivery.next_at, delivery_json(delivery), delivery.id))
        await self._jobs.run(step)

    async def deliveries(self, job_id: str) -> list[Delivery]:
        def step(db: sqlite3.Connection) -> list[Delivery]:
            return [delivery_of(r[0]) for r in
                    db.execute("SELECT data FROM outbox WHERE job_id = ? ORDER BY seq", (job_id,))]
        return await self._jobs.run(step)

    # -- config versions -------------------------------------------------------------

    async def config_latest(self) -> ConfigVersion | None:
        def step(db: sqlite3.Connection) -> ConfigVersion | None:
            row = db.execute(f"SELECT {_VERSION} FROM config_versions ORDER BY version DESC LIMIT 1").fetchone()
            return None if row is None else ConfigVersion(*row[:5], bytes(row[5]))
        return await self._jobs.run(step)

    async def config_version(self, version: int) -> ConfigVersion | None:
        def step(db: sqlite3.Connection) -> ConfigVersion | None:
            row = db.execute(f"SELECT {_VERSION} FROM config_versions WHERE version = ?", (version,)).fetchone()
            return None if row is None else ConfigVersion(*row[:5], bytes(row[5]))
        return await self._jobs.run(step)

    async def config_versions(self, limit: int) -> list[ConfigVersion]:
        def step(db: sqlite3.Connection) -> list[ConfigVersion]:
            return [ConfigVersion(*row) for row in db.execute(
                "SELECT version, at, author, summary, file_hash FROM config_versions ORDER BY version DESC "
                "LIMIT ?", (limit,))]
        return await self._jobs.run(step)

    async def config_put(self, version: ConfigVersion, expected: int) -> int | None:
        def step(db: sqlite3.Connection) -> int | None:
            newest = db.execute("SELECT COALESCE(MAX(version), 0) FROM config_versions").fetchone()[0]
            if newest != expected:
                return None
            db.execute(f"INSERT INTO config_versions ({_VERSION}) VALUES (?, ?, ?, ?, ?, ?)",
                       (newest + 1, version.at, version.author, version.summary, version.file_hash,
                        version.document))
            db.execute("DELETE FROM config_versions WHERE version <= ?", (newest + 1 - CONFIG_VERSIONS_KEPT,))
            return newest + 1
        return await self._jobs.run(step)

    async def worker_beat(self, queue: str, worker: str, info: dict, ttl_s: float) -> None:
        def step(db: sqlite3.Connection) -> None:
            now = time.time()
            db.execute("INSERT OR REPLACE INTO workers (queue, id, until, info) VALUES (?, ?, ?, ?)",
                       (queue, worker, now + ttl_s, orjson.dumps({**info, "id": worker, "until": now + ttl_s})))
            db.execute("DELETE FROM workers WHERE until < ?", (now,))
        await self._jobs.run(step)

    async def workers(self, queue: str) -> list[dict]:
        def step(db: sqlite3.Connection) -> list[dict]:
            return [orjson.loads(r[0]) for r in db.execute(
                "SELECT info FROM workers WHERE queue = ? AND until >= ? ORDER BY id", (queue, time.time()))]
        return await self._jobs.run(step)

    async def secret(self, name: str) -> bytes:
        def step(db: sqlite3.Connection) -> bytes:
            db.execute("INSERT OR IGNORE INTO secrets (name, value) VALUES (?, ?)", (name, secrets.token_bytes(32)))
            return bytes(db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()[0])
        return await self._jobs.run(step)
