"""The request log's records: one per request (who asked, which model and
provider answered, each upstream attempt, how it ended, how long it took,
what it cost), written in batches by `gateway/request_log.py` and read back
by the admin API (`GET /admin/requests`, `/admin/requests/{id}`,
`/admin/stats`).

Each batch also adds to per-bucket stats (request_stats.py): counts, tokens,
cost and latency histograms per (minute | 15 minutes | day, model, provider),
so the Overview's charts read a few hundred small rows, never the records.

Records and stats older than `keep_days` are deleted by `prune`, and past
`max_rows` records the oldest go first.
"""
from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from gateway.store.request_stats import MOST_BUCKETS, WIDTHS, Rollup, Stats, summarise

DAY_MS = 86_400_000


@dataclass(slots=True)
class RequestRecord:
    """One request, as the log keeps it."""
    at_ms: int                  # when it ended (its last byte sent), unix ms
    id: str                     # its x-request-id
    key_id: str                 # the key's stable id ("" when no key was accepted); never the secret
    key_name: str               # the key's name when the request was made, for display
    model: str                  # the public model name ("" when it never got that far)
    provider: str               # the provider that answered, or the last one tried ("" when none)
    status: int
    attempts: int               # upstream attempts, failovers and retries included
    latency_ms: float
    overhead_ms: float | None   # the gateway's own time (x-gateway-overhead-ms); None when not measured
    tokens_in: int
    tokens_out: int
    cost_nano: int              # nano-USD, as the ledger counts it
    error: str | None           # the error's code (or type) when the request failed
    endpoint: str               # chat | embeddings | responses | messages | videos
    stream: bool
    cache_hit: bool
    headers: dict[str, str] = field(default_factory=dict)    # the gateway's own headers sent back
    prompt: str | None = None   # the request's messages/input as JSON, cut at 32 KiB; only with logging.prompts
    answer: str | None = None   # a whole answer's body, cut at 32 KiB; only with logging.prompts (never a stream's)
    # Each upstream attempt, in order: {provider, model (the upstream's), status (the upstream's HTTP status,
    # 200 for the one that answered, None where the failure has none), error (the failure's code or type, never its
    # message), ms}. Empty when none was made, and in records written before attempts were kept.
    attempt_log: list[dict[str, Any]] = field(default_factory=list)

    def packed(self) -> list[Any]:
        """The record as a list in field order (stored as JSON: no field names repeated per record)."""
        return [getattr(self, f) for f in FIELDS]

    @classmethod
    def unpacked(cls, values: list[Any]) -> RequestRecord:
        """A record from `packed()`; fields added later read as their defaults in older records."""
        return cls(*values[:len(FIELDS)])


FIELDS = tuple(f.name for f in fields(RequestRecord))


class Retention(NamedTuple):
    keep_days: int
    max_rows: int


@dataclass(slots=True, frozen=True)
class RequestFilter:
    """Which records a query wants, newest first."""
    key: str | None = None           # a key id
    model: str | None = None
    provider: str | None = None
    status: int | None = None        # exactly this status...
    status_class: int | None = None  # ...or any of this hundred: 5 for 5xx
    since_ms: int | None = None      # inclusive
    until_ms: int | None = None      # exclusive
    limit: int = 50
    before: str | None = None        # a page's `next`: the records after it (older)

    def matches(self, r: RequestRecord) -> bool:
        return ((self.key is None or r.key_id == self.key)
                and (self.model is None or r.model == self.model)
                and (self.provider is None or r.provider == self.provider)
                and (self.status is None or r.status == self.status)
                and (self.status_class is None or r.status // 100 == self.status_class)
                and (self.since_ms is None or r.at_ms >= self.since_ms)
                and (self.until_ms is None or r.at_ms < self.until_ms))


@dataclass(slots=True)
class RequestPage:
    records: list[RequestRecord]
    next: str | None        # pass as `before` for the next (older) page; None: there is none


class BadCursor(ValueError):
    """A `before` this store did not make."""


def day_of(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).date().isoformat()


class Requests(ABC):
    @abstractmethod
    async def add(self, records: list[RequestRecord], retention: Retention) -> None:
        """Write a batch of records and add them to the stats (StoreDown: nothing, or all of it, was written
        on the embedded store; on Redis a batch is one MULTI/EXEC)."""

    @abstractmethod
    async def query(self, f: RequestFilter) -> RequestPage:
        """Records that match `f`, newest first, at most `f.limit` (BadCursor for a `before` it did not make).
        A page may hold fewer than `limit` and still have a `next`: a store bounds the work one query does."""

    @abstractmethod
    async def get(self, request_id: str) -> RequestRecord | None:
        """The newest record with this request id."""

    @abstractmethod
    async def rollups(self, width: int, since_ms: int, until_ms: int) -> list[Rollup]:
        """The stats rows of `width` seconds (one of WIDTHS) whose bucket starts in [since_ms, until_ms)."""

    @abstractmethod
    async def prune(self, retention: Retention, now_ms: int) -> int:
        """Delete records and stats past `keep_days`, then the oldest records past `max_rows`;
        how many records went."""

    async def stats(self, since_ms: int, until_ms: int, width: int, model: str | None = None,
                    provider: str | None = None, now_ms: int | None = None) -> Stats:
        """Per-bucket series and per (model, provider) totals over [since_ms, until_ms) (`now_ms`: rates
        count a bucket under way up to then)."""
        if width not in WIDTHS:
            raise ValueError(f"buckets are {WIDTHS} seconds wide, not {width}")
        start = since_ms - since_ms % (width * 1000)
        if until_ms - start > MOST_BUCKETS * width * 1000:
            raise ValueError(f"at most {MOST_BUCKETS} buckets at a time")
        rows = [r for r in await self.rollups(width, start, until_ms)
                if (model is None or r.model == model) and (provider is None or r.provider == provider)]
        return summarise(rows, start, until_ms, width, now_ms)
