"""Grants: room under a key's limits that Redis set aside for one replica, so
that while a key is far from every limit its requests are admitted in the
replica, with no round trip.

When a request's admission goes to Redis and none of its shape (the same
windows, lease and budget, at the same limits) is held, it asks for a grant
as well: GRANT_N more requests' worth of every limit, charged in the same
atomic step (window units in the current bucket, GRANT_N more lease slots,
GRANT_N holds' worth of budget). Redis gives it only if each limit would
still have FLOOR_N requests' worth of room after it, and the windows' current
bucket has a fiftieth of its span or more to run (limits_lua.py, ADMIT).
The replica then admits requests of that shape from the grant itself, each
taking its own amounts, until the grant runs out or its bucket ends
(`Grant.until`, from the replica's clock when the admission was queued: no
later than Redis's). Requests of that shape that come while the grant is on
its way wait for it and take from it (limits.py: `admit`), unless Redis gave
that shape no grant in the last 0.1 s. What a request admitted from a grant gives back when it
ends (a slot, a hold, tokens it did not use) goes back to the grant; its
spend is noted there. When the grant ends, what is left goes back to Redis
in one settlement: the windows' unused units from the bucket they were
charged to, the unused slots, the unused holds, and the spend noted turned
from held into spent.

Why it stays exact: everything a grant holds is counted in Redis the moment
it is given, so no replica can admit past a limit; a window's units are
charged to the bucket a request admitted from it falls in. What a grant
costs is room held back: near a limit (under FLOOR_N requests' worth left)
none is given and every request is decided by Redis alone; a replica holds
at most GRANT_N requests' worth per shape, for at most one bucket of the
shortest window (a second for per-minute limits). A replica that dies with
a grant leaves it counted: window units until their window passes, slots
until their lease TTL, holds until the budget's period ends (as a dying
replica's in-flight requests do).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from gateway.store.limits import Admission, Lease, Settlement, Verdict, Window

GRANT_N = 32        # requests' worth per grant: one round trip in about this many requests of a busy key
FLOOR_N = 1024      # requests' worth of room a limit keeps after a grant; below it Redis decides each request

Shape = tuple[Any, ...]


def shape_of(a: Admission) -> Shape:
    """What a grant is for: the windows, lease and budget with their limits (amounts aside)."""
    lease, hold = a.lease, a.hold
    return (tuple((w.key, w.limit, w.window_s) for w in a.windows),
            None if lease is None else (lease.key, lease.limit),
            None if hold is None else (hold.key, hold.limit))


@dataclass(slots=True)
class Grant:
    """One shape's room, held by this replica until `until` (the loop's clock)."""
    shape: Shape
    windows: list[Window]           # as the admission that asked for it named them
    at: float                       # Redis's clock when it was charged: its windows' bucket
    until: float
    units: list[int]                # per window: units left to hand out
    remaining: list[int]            # per window: what Redis said was left for everyone else
    reset_at: list[float]           # per window: when its oldest unit leaves (the loop's clock)
    slots: list[str] = field(default_factory=list)      # lease ids not in use
    hold: int = 0                   # nano-USD of budget left to hand out (below 0: spent past the holds)
    spent: int = 0                  # nano-USD spent by requests from the grant, still counted as held in Redis
    ended: bool = False

    def take(self, a: Admission) -> bool:
        """Take one request's amounts, if all of them are here."""
        if a.windows:
            units = self.units
            for i, w in enumerate(a.windows):
                if units[i] < w.amount:
                    return False
        if a.lease is not None and not self.slots:
            return False
        if a.hold is not None and self.hold < a.hold.amount:
            return False
        for i, w in enumerate(a.windows):
            self.units[i] -= w.amount
        if a.hold is not None:
            self.hold -= a.hold.amount
        return True


@dataclass(slots=True)
class Given:
    """What one request was admitted with from a grant: handed back when it ends."""
    grant: Grant
    slot: str | None


def verdict_from(grant: Grant, a: Admission) -> Verdict:
    """The verdict for a request admitted from a grant (its amounts taken already)."""
    now = asyncio.get_running_loop().time()
    return Verdict(True, remaining=[r + u for r, u in zip(grant.remaining, grant.units, strict=True)],
                   reset_s=[max(0.0, r - now) for r in grant.reset_at], at=grant.at,
                   given=Given(grant, grant.slots.pop() if a.lease is not None else None))


def settled_in(given: Given, s: Settlement) -> Settlement:
    """What is left to settle in Redis of a request admitted from a grant: its ledger row
    only while the grant lasts (the rest goes back to the grant); after, the rest too."""
    grant = given.grant
    if grant.ended:
        lease = s.lease
        if lease is not None and given.slot is not None:     # the slot it held is the grant's, by its id
            lease = Lease(lease.key, lease.limit, given.slot, lease.ttl_s)
        return Settlement(s.corrections, lease, s.hold, s.spent_nano, s.entry)
    for win, _, delta in s.corrections:
        for i, w in enumerate(grant.windows):
            if w.key == win.key:
                grant.units[i] -= delta
                break
    if given.slot is not None:
        grant.slots.append(given.slot)
    if s.hold is not None:
        grant.hold += s.hold.amount - s.spent_nano
        grant.spent += s.spent_nano
    return Settlement(entry=s.entry)
