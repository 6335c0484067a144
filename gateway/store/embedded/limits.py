"""Limits of the embedded store: windows, leases and holds in this process's
memory. Exact for one process; with `--workers N` each worker keeps its own
limits (use Redis to share them). Spend is counted from the ledger."""
from __future__ import annotations

import time

from gateway.store.embedded.ledger import EmbeddedLedger
from gateway.store.limits import Admission, InUse, Limits, Settlement, Verdict, Window, budget_span
from gateway.store.windows import BUCKETS, Buckets, bucket_of


class EmbeddedLimits(Limits):
    def __init__(self, ledger: EmbeddedLedger) -> None:
        self._ledger = ledger
        self._windows: dict[str, Buckets] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._holds: dict[str, int] = {}                     # budget period -> nano-USD held
        self._spent_in: dict[str, int] = {}                  # budget period -> nano-USD spent

    async def admit(self, a: Admission) -> Verdict:
        # No await between check and charge: atomic within the event loop.
        now = a.now or time.time()
        remaining: list[int] = []
        resets: list[float] = []
        live = []
        for win in a.windows:
            current = bucket_of(now, win.window_s)
            buckets = self._windows.get(win.key)
            if buckets is None:
                buckets = self._windows[win.key] = Buckets()
            buckets.advance(current)
            if buckets.total + win.amount > win.limit:
                return Verdict(False, win.family, buckets.retry_after(win.window_s, now, win.amount, win.limit))
            live.append((win, buckets, current))
        if a.lease is not None:
            held = self._leases.setdefault(a.lease.key, {})
            if len(held) >= a.lease.limit:      # expired ones are cleared only when they are in the way
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
                buckets.correct(bucket_of(admitted_at, win.window_s), delta)
        if s.lease is not None:
            self._leases.get(s.lease.key, {}).pop(s.lease.id, None)
        if s.hold is not None:
            self._holds[s.hold.key] = max(0, self._holds.get(s.hold.key, 0) - s.hold.amount)
            self._spent_in[s.hold.key] = self._spent(s.hold.key) + s.spent_nano
        if s.entry is not None:
            self._ledger.add(s.entry)

    async def usage(self, windows: list[Window], leases: list[str]) -> InUse:
        # What `advance` then `total` would give, without dropping anything.
        now = time.time()
        counted = []
        for win in windows:
            buckets = self._windows.get(win.key)
            oldest = bucket_of(now, win.window_s) - BUCKETS + 1
            counted.append(0 if buckets is None else sum(v for b, v in buckets.counts.items() if b >= oldest))
        held = [sum(until > now for until in self._leases.get(key, {}).values()) for key in leases]
        return InUse(counted, held)

    def _spent(self, hold_key: str) -> int:
        spent = self._spent_in.get(hold_key)
        if spent is None:    # first use of this period: add up the ledger once
            spent = self._spent_in[hold_key] = self._ledger.cost(*budget_span(hold_key))
        return spent

    async def budget_spent(self, hold_key: str) -> int:
        # A report must not start tracking a period: only holds keep it up to date.
        spent = self._spent_in.get(hold_key)
        return self._ledger.cost(*budget_span(hold_key)) if spent is None else spent
