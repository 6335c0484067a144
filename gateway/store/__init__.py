"""Shared state behind one small interface: rate-limit windows, concurrency
leases, budget holds, the spend ledger, the response cache, and video jobs
with their work queues and webhook outbox.

Two implementations: `embedded` (in-process + SQLite under `state.data_dir`)
and `redis` (any number of replicas sharing one Redis). Nothing else talks to
Redis. Every decision on the request path is one `admit` call: one atomic step
(one Lua script on Redis) that checks and charges all of a request's limits.
"""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import AsyncIterator
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


TERMINAL = frozenset({"completed", "failed"})


@dataclass(slots=True)
class JobRecord:
    """A video job as the store keeps it: the fields it indexes or decides on,
    and the whole job as JSON (gateway/video/jobs.py says what is in it)."""
    id: str              # "video_" + time-ordered hex: ids sort by creation
    key: str             # the gateway key (name) that owns it; lists are per key
    status: str          # queued | in_progress | completed | failed
    data: bytes          # the job, JSON
    expires_at: int | None = None    # unix seconds: assets are deleted after this


@dataclass(slots=True)
class Claim:
    """A run of a job by one consumer (a gateway process or a worker). Its
    `token` is written to the job when claimed: updates carrying an older
    token (a run whose lease lapsed and was taken over) are refused."""
    queue: str
    job_id: str
    token: str
    consumer: str
    entry: str = ""      # the store's own handle on the queue entry (Redis: the stream entry id)
    attempt: int = 1     # 1 for the first run; more after consumers died holding it


@dataclass(slots=True)
class Delivery:
    """One webhook event for one endpoint, kept in the outbox until delivered
    or given up on. The body is re-signed at each attempt (receivers refuse
    old timestamps); `id` is the event id, the same every attempt."""
    id: str                  # unique per (event, endpoint)
    event_id: str            # "evt_...": webhook-id, what receivers deduplicate on
    url: str
    body: bytes              # the event JSON
    job_id: str
    attempts: int = 0
    next_at: float = 0.0     # unix seconds of the next attempt
    status: str = "pending"  # pending | delivered | failed
    history: list[dict] = field(default_factory=list)   # per attempt: {"at", "status", "error"}


@dataclass(slots=True)
class ConfigVersion:
    """One version of the running config, as every replica reads it."""
    version: int
    at: float                      # unix seconds
    author: str                    # who made it: "file" (the YAML seed) or the admin API's caller
    summary: str                   # what changed, in a line
    file_hash: str = ""            # sha256 of the YAML seed in effect (carried forward by edits)
    document: bytes | None = None  # the config as written, JSON; None in listings


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

    # -- video jobs --------------------------------------------------------------
    # Off the chat path: a job costs a few store trips per state change.

    @abstractmethod
    async def job_create(self, job: JobRecord, queue: str) -> None:
        """Store a new job and put it on `queue` (a provider's name), atomically."""

    @abstractmethod
    async def job_get(self, job_id: str) -> JobRecord | None: ...

    @abstractmethod
    async def job_list(self, key: str, after: str | None, limit: int,
                       order: str) -> tuple[list[JobRecord], bool]:
        """A key's jobs by id ("asc" or "desc"), those past `after` only, at most
        `limit`; and whether more follow."""

    @abstractmethod
    async def job_update(self, job: JobRecord, token: str | None = None,
                         deliveries: list[Delivery] | None = None) -> bool:
        """Write the job's new state, and queue `deliveries` in the same atomic
        step. Refused (False) when the job is gone, already finished, or, with a
        `token`, claimed by another run since."""

    @abstractmethod
    async def job_delete(self, job_id: str) -> JobRecord | None:
        """Remove a job, its list entry and its queue entry; what it was, or None."""

    @abstractmethod
    async def queue_claim(self, queue: str, consumer: str, lease_s: float) -> Claim | None:
        """The next job to run from `queue`: a new one, or one whose claim was not
        renewed within `lease_s` (its consumer died). Writes the claim's token to
        the job. None when there is nothing to do."""

    @abstractmethod
    async def queue_renew(self, claim: Claim, lease_s: float) -> bool:
        """Heartbeat: keep the claim `lease_s` longer. False when it was lost (the
        job is gone or another consumer holds it): stop working on it."""

    @abstractmethod
    async def queue_done(self, claim: Claim) -> None:
        """Take the job off its queue (finished, failed or cancelled)."""

    async def queue_events(self) -> AsyncIterator[str]:
        """The names of queues as jobs are put on them, from any process sharing the
        store, for runners to look at once; a store that cannot tell yields nothing
        (runners also look on their own every quarter second)."""
        await asyncio.Event().wait()
        yield ""   # never reached: makes this an async generator

    @abstractmethod
    async def queue_depth(self, queue: str) -> int:
        """Jobs on a queue, waiting or running."""

    @abstractmethod
    async def queue_oldest(self, queue: str) -> float | None:
        """When the oldest job still on a queue (waiting or running) was put there
        (unix seconds), or None when the queue is empty."""

    @abstractmethod
    async def jobs_expiring(self, now: float, limit: int) -> list[str]:
        """Up to `limit` ids of jobs whose `expires_at` has passed, each returned
        once (taken off the expiry index)."""

    @abstractmethod
    async def jobs_forget(self, before: float, limit: int) -> list[str]:
        """Remove up to `limit` jobs whose `expires_at` is before `before`, with
        their list entries and webhook deliveries, so records do not pile up
        forever; their ids."""

    @abstractmethod
    async def outbox_claim(self, now: float, limit: int, lease_s: float) -> list[Delivery]:
        """Pending deliveries that are due; each is pushed `lease_s` into the
        future as it is taken, so a sender that dies leaves it to be retried."""

    @abstractmethod
    async def outbox_save(self, delivery: Delivery) -> None:
        """Record an attempt: delivered, failed for good, or due again at `next_at`."""

    @abstractmethod
    async def deliveries(self, job_id: str) -> list[Delivery]:
        """Every delivery of a job's events, with their attempts."""

    # -- config versions ---------------------------------------------------------

    @abstractmethod
    async def config_latest(self) -> ConfigVersion | None:
        """The newest config version, with its document; None before the first."""

    @abstractmethod
    async def config_version(self, version: int) -> ConfigVersion | None: ...

    @abstractmethod
    async def config_versions(self, limit: int) -> list[ConfigVersion]:
        """The newest versions first, without documents (the store keeps the last 50)."""

    @abstractmethod
    async def config_put(self, version: ConfigVersion, expected: int) -> int | None:
        """Store a new version if the newest is still `expected` (0: none yet), and
        tell every replica; its number, or None when another edit came first."""

    async def config_events(self) -> AsyncIterator[int]:
        """New version numbers as any replica stores them; a store that cannot tell
        yields nothing (replicas also look every few seconds)."""
        await asyncio.Event().wait()
        yield 0   # never reached: makes this an async generator

    @abstractmethod
    async def worker_beat(self, queue: str, worker: str, info: dict, ttl_s: float) -> None:
        """A worker serving `queue` is alive for `ttl_s` more seconds; `info` says what it runs."""

    @abstractmethod
    async def workers(self, queue: str) -> list[dict]:
        """The live workers of a queue: their last `info`, plus `id` and `until` (unix seconds)."""

    @abstractmethod
    async def secret(self, name: str) -> bytes:
        """A random 32-byte secret shared by every replica, made on first use
        (signs `video_url` links when the config sets none)."""


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
