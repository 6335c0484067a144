"""The embedded store: limits, leases and holds in this process's memory, the
ledger in SQLite. Exact for one process; with `--workers N` each worker keeps
its own limits (use Redis to share them)."""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from pathlib import Path

from gateway.store import LEDGER_FIELDS, Admission, LedgerEntry, Settlement, Store, Verdict, budget_span
from gateway.store import windows as w
from gateway.store.embedded_jobs import EmbeddedJobs
from gateway.store.ledger import Ledger

_CACHE_ENTRIES = 10_000


class EmbeddedStore(EmbeddedJobs, Store):
    def __init__(self, data_dir: str | Path) -> None:
        self._ledger = Ledger(Path(data_dir) / "spend.sqlite3")
        self._open_jobs(data_dir)
        self._windows: dict[str, w.Buckets] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._holds: dict[str, int] = {}                     # budget period -> nano-USD held
        self._spent_in: dict[str, int] = {}                  # budget period -> nano-USD spent
        self._rows: dict[tuple[str, str, str, str], LedgerEntry] = {}
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._flusher: asyncio.Task | None = None

    async def start(self) -> None:
        for row in self._ledger.open():
            self._rows[(row.day, row.key, row.model, row.provider)] = row
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every(0.2))

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self._ledger.flush()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self._ledger.close()
        self._jobs.close()

    async def admit(self, a: Admission) -> Verdict:
        # No await between check and charge: atomic within the event loop.
        now = a.now or time.time()
        remaining: list[int] = []
        resets: list[float] = []
        live = []
        for win in a.windows:
            current = w.bucket_of(now, win.window_s)
            buckets = self._windows.get(win.key)
            if buckets is None:
                buckets = self._windows[win.key] = w.Buckets()
            buckets.advance(current)
            if buckets.total + win.amount > win.limit:
                return Verdict(False, win.family, buckets.retry_after(win.window_s, now, win.amount, win.limit))
            live.append((win, buckets, current))
        if a.lease is not None:
            held = self._leases.setdefault(a.lease.key, {})
            for lease_id in [i for i, until in held.items() if until <= now]:
                del held[lease_id]
            if len(held) >= a.lease.limit:
                return Verdict(False, "concurrent", 1.0)
        if a.hold is not None:
            spent = self._spent(a.hold.key) + self._holds.get(a.hold.key, 0)
            if spent + a.hold.amount > a.hold.limit:
                return Verdict(False, "budget", 0.0)
        for win, buckets, current in live:
            buckets.add(current, win.amount)
            remaining.append(max(0, win.limit - buckets.total))
            resets.append(buckets.reset_after(win.window_s, now))
        if a.lease is not None:
            self._leases[a.lease.key][a.lease.id] = now + a.lease.ttl_s
        if a.hold is not None:
            self._holds[a.hold.key] = self._holds.get(a.hold.key, 0) + a.hold.amount
        return Verdict(True, remaining=remaining, reset_s=resets, at=now)

    async def settle(self, s: Settlement) -> None:
        for win, admitted_at, delta in s.corrections:
            buckets = self._windows.get(win.key)
            if buckets is not None:
                buckets.correct(w.bucket_of(admitted_at, win.window_s), delta)
        if s.lease is not None:
            self._leases.get(s.lease.key, {}).pop(s.lease.id, None)
        if s.hold is not None:
            self._holds[s.hold.key] = max(0, self._holds.get(s.hold.key, 0) - s.hold.amount)
            self._spent_in[s.hold.key] = self._spent(s.hold.key) + s.spent_nano
        if s.entry is not None:
            self._add_row(s.entry)
            self._ledger.add(s.entry)

    def _add_row(self, e: LedgerEntry) -> None:
        row = self._rows.get((e.day, e.key, e.model, e.provider))
        if row is None:
            self._rows[(e.day, e.key, e.model, e.provider)] = LedgerEntry(
                e.day, e.key, e.model, e.provider, *(getattr(e, f) for f in LEDGER_FIELDS))
            return
        for f in LEDGER_FIELDS:
            setattr(row, f, getattr(row, f) + getattr(e, f))

    def _spent(self, hold_key: str) -> int:
        spent = self._spent_in.get(hold_key)
        if spent is None:    # first use of this period: add up the ledger once
            spent = self._spent_in[hold_key] = self._ledger_sum(hold_key)
        return spent

    def _ledger_sum(self, hold_key: str) -> int:
        key, day_from, day_to = budget_span(hold_key)
        return sum(r.cost_nano for (day, k, _, _), r in self._rows.items() if k == key and day_from <= day <= day_to)

    async def budget_spent(self, hold_key: str) -> int:
        # A report must not start tracking a period: only holds keep it up to date.
        spent = self._spent_in.get(hold_key)
        return self._ledger_sum(hold_key) if spent is None else spent

    async def spend_rows(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        return [r for (day, *_), r in self._rows.items() if day_from <= day <= day_to]

    async def cache_get(self, key: str) -> bytes | None:
        hit = self._cache.get(key)
        if hit is None:
            return None
        expires, value = hit
        if expires <= time.time():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return value

    async def cache_put(self, key: str, value: bytes, ttl_s: float) -> None:
        self._cache[key] = (time.time() + ttl_s, value)
        self._cache.move_to_end(key)
        while len(self._cache) > _CACHE_ENTRIES:
            self._cache.popitem(last=False)

    async def ping(self) -> bool:
        return True
