"""The durable spend ledger of the embedded store: SQLite in WAL mode, rows per
(day, key, model, provider), written by a thread of its own in small batches so
the event loop never waits on the disk.

A crash loses at most the last batch (`flush_s`); a clean shutdown loses nothing.
"""
from __future__ import annotations

import queue
import sqlite3
import threading
from pathlib import Path

from gateway.store import LEDGER_FIELDS, LedgerEntry

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS spend (
    day TEXT NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL,
    {", ".join(f"{f} INTEGER NOT NULL DEFAULT 0" for f in LEDGER_FIELDS)},
    PRIMARY KEY (day, key, model, provider)
)"""
_UPSERT = (f"INSERT INTO spend (day, key, model, provider, {', '.join(LEDGER_FIELDS)}) "
           f"VALUES (?, ?, ?, ?, {', '.join('?' for _ in LEDGER_FIELDS)}) "
           f"ON CONFLICT (day, key, model, provider) DO UPDATE SET "
           + ", ".join(f"{f} = {f} + excluded.{f}" for f in LEDGER_FIELDS))


class Ledger:
    def __init__(self, path: Path, flush_s: float = 0.2) -> None:
        self.path = path
        self._flush_s = flush_s
        self._queue: queue.Queue[LedgerEntry | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def open(self) -> list[LedgerEntry]:
        """Create the file if need be, start the writer, and return every row."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.commit()
            rows = [LedgerEntry(*r) for r in db.execute(
                f"SELECT day, key, model, provider, {', '.join(LEDGER_FIELDS)} FROM spend")]
        finally:
            db.close()
        self._thread = threading.Thread(target=self._write, name="gateway-ledger", daemon=True)
        self._thread.start()
        return rows

    def add(self, entry: LedgerEntry) -> None:
        self._queue.put(entry)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def _write(self) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")    # WAL + NORMAL: durable across process crashes
        try:
            while True:
                first = self._queue.get()
                batch = [first]
                try:
                    while len(batch) < 1000:
                        batch.append(self._queue.get(timeout=self._flush_s if first is not None else 0))
                except queue.Empty:
                    pass
                rows = [(e.day, e.key, e.model, e.provider, *(getattr(e, f) for f in LEDGER_FIELDS))
                        for e in batch if e is not None]
                if rows:
                    db.executemany(_UPSERT, rows)
                    db.commit()
                if None in batch:
                    return
        finally:
            db.close()
