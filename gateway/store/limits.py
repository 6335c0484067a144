"""Rate limits, concurrency slots and budgets: the part of the store on every
request's path, and what it is asked.

One `admit` checks and charges all of a request's limits in one atomic step
(on Redis, one Lua script); one `settle` writes back what the request really
used, turns its budget hold into spend and adds its ledger row, also atomically.
Reports read without charging: `usage` (what windows and leases count this
moment) and `budget_spent`; neither is on the request path.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from gateway.store.ledger import LedgerEntry


@dataclass(slots=True)
class Window:
    """A sliding-window counter: at most `limit` units in any `window_s` seconds
    (counted in 60 buckets of window_s/60 each; see windows.py for the bound)."""
    family: str          # what it counts, as the headers name it: "requests" | "tokens" | "videos"
    key: str             # the store key, e.g. "rpm:key:demo"
    limit: int
    window_s: int
    amount: int          # what this request charges


@dataclass(slots=True)
class Lease:
    """A concurrency slot, held until released or until it expires (a replica that
    died never releases its leases)."""
    key: str
    limit: int
    id: str
    ttl_s: float


@dataclass(slots=True)
class Hold:
    """Money set aside for a request against a budget, in nano-USD."""
    key: str             # budget key and period, e.g. "budget:demo:month:2026-11"
    limit: int
    amount: int


@dataclass(slots=True)
class Admission:
    windows: list[Window] = field(default_factory=list)
    lease: Lease | None = None
    hold: Hold | None = None
    now: float = 0.0


@dataclass(slots=True)
class Verdict:
    allowed: bool
    refused_by: str | None = None      # the family ("requests", "tokens", ...), "concurrent" or "budget"
    retry_after_s: float = 0.0
    remaining: list[int] = field(default_factory=list)   # per window, after this request
    reset_s: list[float] = field(default_factory=list)   # per window: until capacity frees up
    at: float = 0.0                    # the store's clock when it decided (Redis: its own): the bucket to correct
    given: Any = None                  # the store's own note of where it was admitted from (Redis: a grant)


@dataclass(slots=True)
class Settlement:
    """What a finished request leaves behind: token estimates corrected, its slot
    freed, its hold turned into spend, and its ledger row."""
    corrections: list[tuple[Window, float, int]] = field(default_factory=list)  # (window, admitted at, delta)
    lease: Lease | None = None
    hold: Hold | None = None
    spent_nano: int = 0
    entry: LedgerEntry | None = None
    given: Any = None                  # the verdict's `given`: the store settles it where it came from


@dataclass(slots=True)
class InUse:
    """What some windows and leases count this moment, as `usage` read it."""
    windows: list[int] = field(default_factory=list)   # per window asked: the units admit would count now
    leases: list[int] = field(default_factory=list)    # per lease key asked: its leases not expired


class Limits(ABC):
    @abstractmethod
    async def admit(self, a: Admission) -> Verdict:
        """Check every limit of `a` and, only if all pass, charge them all."""

    @abstractmethod
    async def settle(self, s: Settlement) -> None: ...

    @abstractmethod
    async def usage(self, windows: list[Window], leases: list[str]) -> InUse:
        """What each window counts and how many unexpired leases each lease key holds, this
        moment, exactly as `admit` would count them (only a window's key and window_s are
        read). Read only: nothing is charged, pruned or started."""

    @abstractmethod
    async def budget_spent(self, hold_key: str) -> int:
        """Nano-USD recorded against a budget period (holds not included)."""


def budget_span(hold_key: str) -> tuple[str, str, str]:
    """(key, first day, last day) that a hold key "budget:<key>:<from>:<to>" covers."""
    _, rest = hold_key.split(":", 1)
    key, day_from, day_to = rest.rsplit(":", 2)
    return key, day_from, day_to
