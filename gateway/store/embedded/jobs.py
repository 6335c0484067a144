"""Video jobs, their work queues and the webhook outbox of the embedded store,
as tables of its database file (database.py): each call is one transaction."""
from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

import orjson

from gateway.store.embedded.database import Database
from gateway.store.jobs import Claim, Delivery, JobRecord, Jobs

_LIVE = "status NOT IN ('completed', 'failed')"
_COLUMNS = "id, key, status, data, expires_at"


class EmbeddedJobs(Jobs):
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- jobs ------------------------------------------------------------------

    async def create(self, job: JobRecord, queue: str) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute(f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                       (job.id, job.key, job.status, job.data, job.expires_at))
            if queue:
                db.execute("INSERT INTO queue (queue, job_id, queued_at) VALUES (?, ?, ?)",
                           (queue, job.id, time.time()))
        await self._db.run(step)

    async def get(self, job_id: str) -> JobRecord | None:
        def step(db: sqlite3.Connection) -> JobRecord | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return None if row is None else _record(row)
        return await self._db.run(step)

    async def page(self, key: str, after: str | None, limit: int,
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
        return await self._db.run(step)

    async def update(self, job: JobRecord, token: str | None = None,
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
                           (d.id, d.job_id, d.status, d.next_at, _delivery_json(d)))
            return True
        return await self._db.run(step)

    async def delete(self, job_id: str) -> JobRecord | None:
        def step(db: sqlite3.Connection) -> JobRecord | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM queue WHERE job_id = ?", (job_id,))
            return _record(row)
        return await self._db.run(step)

    # -- queues ----------------------------------------------------------------

    async def claim(self, queue: str, consumer: str, lease_s: float) -> Claim | None:
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
        return await self._db.run(step)

    async def renew(self, claim: Claim, lease_s: float) -> bool:
        def step(db: sqlite3.Connection) -> bool:
            return db.execute(
                f"UPDATE queue SET lease_until = ? WHERE job_id = ? AND EXISTS "
                f"(SELECT 1 FROM jobs WHERE id = ? AND token = ? AND {_LIVE})",
                (time.time() + lease_s, claim.job_id, claim.job_id, claim.token)).rowcount > 0
        return await self._db.run(step)

    async def done(self, claim: Claim) -> None:
        def step(db: sqlite3.Connection) -> None:
            # Not when another run holds the job now (this one's lease lapsed): it is theirs to finish.
            db.execute(f"DELETE FROM queue WHERE job_id = ? AND NOT EXISTS "
                       f"(SELECT 1 FROM jobs WHERE id = ? AND token != ? AND {_LIVE})",
                       (claim.job_id, claim.job_id, claim.token))
        await self._db.run(step)

    async def queue_depth(self, queue: str) -> int:
        def step(db: sqlite3.Connection) -> int:
            return db.execute("SELECT COUNT(*) FROM queue WHERE queue = ?", (queue,)).fetchone()[0]
        return await self._db.run(step)

    async def queue_oldest(self, queue: str) -> float | None:
        def step(db: sqlite3.Connection) -> float | None:
            return db.execute("SELECT MIN(queued_at) FROM queue WHERE queue = ?", (queue,)).fetchone()[0]
        return await self._db.run(step)

    # -- expiry ----------------------------------------------------------------

    async def expiring(self, now: float, limit: int) -> list[str]:
        def step(db: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE expiry_swept = 0 AND expires_at IS NOT NULL AND expires_at <= ? "
                "LIMIT ?", (now, limit))]
            db.executemany("UPDATE jobs SET expiry_swept = 1 WHERE id = ?", [(i,) for i in ids])
            return ids
        return await self._db.run(step)

    async def forget(self, before: float, limit: int) -> list[str]:
        def step(db: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at < ? LIMIT ?", (before, limit))]
            for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
                marks = ", ".join("?" for _ in chunk)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", chunk)
                db.execute(f"DELETE FROM outbox WHERE job_id IN ({marks})", chunk)
            return ids
        return await self._db.run(step)

    # -- the webhook outbox ----------------------------------------------------

    async def outbox_claim(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        def step(db: sqlite3.Connection) -> list[Delivery]:
            rows = db.execute("SELECT seq, data FROM outbox WHERE status = 'pending' AND next_at <= ? "
                              "ORDER BY next_at, seq LIMIT ?", (now, limit)).fetchall()
            db.executemany("UPDATE outbox SET next_at = ? WHERE seq = ?", [(now + lease_s, r[0]) for r in rows])
            return [_delivery_of(r[1]) for r in rows]
        return await self._db.run(step)

    async def outbox_save(self, delivery: Delivery) -> None:
        def step(db: sqlite3.Connection) -> None:
            db.execute("UPDATE outbox SET status = ?, next_at = ?, data = ? WHERE id = ?",
                       (delivery.status, delivery.next_at, _delivery_json(delivery), delivery.id))
        await self._db.run(step)

    async def deliveries(self, job_id: str) -> list[Delivery]:
        def step(db: sqlite3.Connection) -> list[Delivery]:
            return [_delivery_of(r[0]) for r in
                    db.execute("SELECT data FROM outbox WHERE job_id = ? ORDER BY seq", (job_id,))]
        return await self._db.run(step)


def _record(row: tuple) -> JobRecord:
    return JobRecord(row[0], row[1], row[2], bytes(row[3]), row[4])


def _delivery_json(d: Delivery) -> bytes:
    return orjson.dumps({"id": d.id, "event_id": d.event_id, "url": d.url, "body": d.body.decode("utf-8"),
                         "job_id": d.job_id, "attempts": d.attempts, "next_at": d.next_at,
                         "status": d.status, "history": d.history})


def _delivery_of(raw: bytes | str) -> Delivery:
    x: dict[str, Any] = orjson.loads(raw)
    return Delivery(x["id"], x["event_id"], x["url"], x["body"].encode("utf-8"), x["job_id"], x["attempts"],
                    x["next_at"], x["status"], x["history"])
