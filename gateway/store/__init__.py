"""Shared state behind one small interface: rate-limit windows, concurrency
leases, budget holds, the spend ledger and the response cache.

Two implementations: `embedded` (in-process + SQLite under `state.data_dir`)
and `redis` (any number of replicas sharing one Redis). Nothing else talks to
Redis. Every decision on the request path is one `admit` call: one atomic step
(one Lua script on Redis) that checks and charges all of a request's limits.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class StoreDown(Exception):
    """The state store did not answer (in time): the caller applies its policy."""


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


@dataclass(slots=True)
class LedgerEntry:
    """Spend added to one (day, key, model, provider) row."""
    day: str
    key: str
    model: str
    provider: str
    requests: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_nano: int = 0
    cache_hits: int = 0


@dataclass(slots=True)
class Settlement:
    """What a finished request leaves behind: token estimates corrected, its slot
    freed, its hold turned into spend, and its ledger row."""
    corrections: list[tuple[Window, float, int]] = field(default_factory=list)  # (window, admitted at, delta)
    lease: Lease | None = None
    hold: Hold | None = None
    spent_nano: int = 0
    entry: LedgerEntry | None = None


LEDGER_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nano", "cache_hits")


class Store(ABC):
    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @abstractmethod
    async def admit(self, a: Admission) -> Verdict: ...

    @abstractmethod
    async def settle(self, s: Settlement) -> None: ...

    @abstractmethod
    async def budget_spent(self, hold_key: str) -> int:
        """Nano-USD recorded against a budget period (holds not included)."""

    @abstractmethod
    async def spend_rows(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        """Ledger rows for days in [day_from, day_to] (YYYY-MM-DD)."""

    @abstractmethod
    async def cache_get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def cache_put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    @abstractmethod
    async def ping(self) -> bool: ...


def budget_span(hold_key: str) -> tuple[str, str, str]:
    """(key, first day, last day) that a hold key "budget:<key>:<from>:<to>" covers."""
    _, rest = hold_key.split(":", 1)
    key, day_from, day_to = rest.rsplit(":", 2)
    return key, day_from, day_to


def open_store(state) -> Store:
    """The store a config's `state:` names: Redis when `redis_url` is set, else embedded."""
    if state.redis_url:
        from gateway.store.redis import RedisStore
        return RedisStore(state.redis_url, timeout_s=state.redis_timeout_ms / 1000)
    from gateway.store.embedded import EmbeddedStore
    return EmbeddedStore(state.data_dir)
