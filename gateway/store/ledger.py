"""The durable spend ledger of the embedded store: SQLite in WAL mode, rows per
(day, key, model, provider).

Requests add to in-memory deltas on the event loop (a dict update); every
`flush_s` the owner hands the deltas over (`flush`) and a thread of its own
writes them, one row per group rather than one per request, so neither the
disk nor a busy writer thread holds up requests.

A crash loses at most the last `flush_s` of spend; a clean shutdown loses nothing.
"""
from __future__ import annotations

import sqlite3
import threading
from collections import deque
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
        self._dirty: dict[tuple[str, str, str, str], list[int]] = {}   # event loop only
        # Batches handed to the writer: deque's ends are thread-safe, and the
        # writer wakes on its own clock, so a request never wakes a thread.
        self._pending: deque[dict[tuple[str, str, str, str], list[int]]] = deque()
        self._stop = threading.Event()
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

    def add(self, e: LedgerEntry) -> None:
        delta = self._dirty.get((e.day, e.key, e.model, e.provider))
        if delta is None:
            self._dirty[(e.day, e.key, e.model, e.provider)] = [getattr(e, f) for f in LEDGER_FIELDS]
            return
        for i, f in enumerate(LEDGER_FIELDS):
            delta[i] += getattr(e, f)

    def flush(self) -> None:
        """Hand what accumulated to the writer (call from the event loop)."""
        if self._dirty:
            self._pending.append(self._dirty)
            self._dirty = {}

    def close(self) -> None:
        self.flush()
        if self._thread is not None:
            self._stop.set()
            self._thread.join(10)
            self._thread = None

    def _write(self) -> None:
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")    # WAL + NORMAL: durable across process crashes
        try:
            while True:
                stopping = self._stop.wait(self._flush_s)
                rows = []
                while self._pending:
                    rows.extend((*group, *delta) for group, delta in self._pending.popleft().items())
                if rows:
                    db.executemany(_UPSERT, rows)
                    db.commit()
                if stopping:
                    return
        finally:
            db.close()
