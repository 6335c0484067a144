"""The embedded store's spend ledger: rows per (day, key, model, provider) in
memory, written behind to SQLite (`spend.sqlite3` under `state.data_dir`, WAL).

Requests add to in-memory deltas on the event loop (a dict update); every
`flush_s` the deltas are handed over and a thread of their own writes them,
one row per group rather than one per request, so neither the disk nor a busy
writer thread holds up requests.

A crash loses at most the last `flush_s` of spend; a clean shutdown loses nothing.

Reports read the file, not the memory: `gateway serve --workers N` processes
all add to the one file, so every process reports the server's whole spend
(each process's own share up to the moment asked, the others' up to their
last flush).
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import deque
from pathlib import Path
from typing import Any

from gateway.store.ledger import LEDGER_FIELDS, Ledger, LedgerEntry

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

Group = tuple[str, str, str, str]   # (day, key, model, provider)


class EmbeddedLedger(Ledger):
    def __init__(self, path: Path, flush_s: float = 0.2) -> None:
        self._file = SpendFile(path, flush_s)
        self._flush_s = flush_s
        self._rows: dict[Group, LedgerEntry] = {}
        self._flusher: asyncio.Task | None = None

    async def start(self) -> None:
        for row in self._file.open():
            self._rows[(row.day, row.key, row.model, row.provider)] = row
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every(self._flush_s))

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self._file.flush()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self._file.close()

    def add(self, e: LedgerEntry) -> None:
        """Add a settled request's row (from EmbeddedLimits.settle)."""
        group = e.group
        row = self._rows.get(group)
        if row is None:
            self._rows[group] = e.copy()
        else:
            row.add(e)
        self._file.add(group, e)

    def cost(self, key: str, day_from: str, day_to: str) -> int:
        """Nano-USD a key spent on the days in [day_from, day_to]."""
        return sum(r.cost_nano for (day, k, _, _), r in self._rows.items() if k == key and day_from <= day <= day_to)

    async def rows(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        self._file.flush()
        return await asyncio.to_thread(self._file.read, day_from, day_to)


class SpendFile:
    """The SQLite file behind the ledger and the thread that writes it."""

    def __init__(self, path: Path, flush_s: float = 0.2) -> None:
        self.path = path
        self._flush_s = flush_s
        self._dirty: dict[Group, LedgerEntry] = {}   # event loop only
        # Batches handed to the writer: deque's ends are thread-safe, and the
        # writer wakes on its own clock, so a request never wakes a thread.
        self._pending: deque[dict[Group, LedgerEntry]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Held from taking a batch until it is committed: a report waits for a write under way.
        self._writing = threading.Lock()

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

    def add(self, group: Group, e: LedgerEntry) -> None:
        delta = self._dirty.get(group)
        if delta is None:
            self._dirty[group] = e.copy()
        else:
            delta.add(e)

    def flush(self) -> None:
        """Hand what accumulated to the writer (call from the event loop)."""
        if self._dirty:
            self._pending.append(self._dirty)
            self._dirty = {}

    def read(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        """The file's rows for days in [day_from, day_to], after writing what is
        pending (on a thread: the writer may be writing at the same time)."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            self._write_pending(db)     # waits for a batch the writer took to be committed
            return [LedgerEntry(*r) for r in db.execute(
                f"SELECT day, key, model, provider, {', '.join(LEDGER_FIELDS)} FROM spend "
                "WHERE day BETWEEN ? AND ?", (day_from, day_to))]
        finally:
            db.close()

    def _write_pending(self, db: sqlite3.Connection) -> None:
        # Each batch is written once, by whichever thread takes it, under the lock.
        with self._writing:
            rows: list[tuple[Any, ...]] = []
            while self._pending:
                rows.extend((*group, *delta.counts()) for group, delta in self._pending.popleft().items())
            if rows:
                db.executemany(_UPSERT, rows)
                db.commit()

    def close(self) -> None:
        self.flush()
        if self._thread is not None:
            self._stop.set()
            self._thread.join(10)
            self._thread = None

    def _write(self) -> None:
        db = sqlite3.connect(self.path, timeout=10)    # other processes of the server write the file too
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")    # WAL + NORMAL: durable across process crashes
        try:
            while True:
                stopping = self._stop.wait(self._flush_s)
                self._write_pending(db)
                if stopping:
                    return
        finally:
            db.close()
