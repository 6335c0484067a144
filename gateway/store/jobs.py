"""Video jobs as the store keeps them: the jobs, the work queues their runs are
claimed from, the expiry index, and the webhook outbox (a job's events are
queued in the same atomic step as the update that finishes it).

Off the chat path: a job costs a few store trips per state change.
"""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

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


class Jobs(ABC):
    # -- jobs ------------------------------------------------------------------

    @abstractmethod
    async def create(self, job: JobRecord, queue: str) -> None:
        """Store a new job and put it on `queue` (a provider's name), atomically; with
        `queue` empty, on none (a job finished as it is made: a cache hit)."""

    @abstractmethod
    async def get(self, job_id: str) -> JobRecord | None: ...

    @abstractmethod
    async def page(self, key: str, after: str | None, limit: int,
                   order: str) -> tuple[list[JobRecord], bool]:
        """A key's jobs by id ("asc" or "desc"), those past `after` only, at most
        `limit`; and whether more follow."""

    @abstractmethod
    async def update(self, job: JobRecord, token: str | None = None,
                     deliveries: list[Delivery] | None = None) -> bool:
        """Write the job's new state, and queue `deliveries` in the same atomic
        step. Refused (False) when the job is gone, already finished, or, with a
        `token`, claimed by another run since."""

    @abstractmethod
    async def delete(self, job_id: str) -> JobRecord | None:
        """Remove a job, its list entry and its queue entry; what it was, or None."""

    # -- queues ----------------------------------------------------------------

    @abstractmethod
    async def claim(self, queue: str, consumer: str, lease_s: float) -> Claim | None:
        """The next job to run from `queue`: a new one, or one whose claim was not
        renewed within `lease_s` (its consumer died). Writes the claim's token to
        the job. None when there is nothing to do."""

    @abstractmethod
    async def renew(self, claim: Claim, lease_s: float) -> bool:
        """Heartbeat: keep the claim `lease_s` longer. False when it was lost (the
        job is gone or another consumer holds it): stop working on it."""

    @abstractmethod
    async def done(self, claim: Claim) -> None:
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

    # -- expiry ----------------------------------------------------------------

    @abstractmethod
    async def expiring(self, now: float, limit: int) -> list[str]:
        """Up to `limit` ids of jobs whose `expires_at` has passed, each returned
        once (taken off the expiry index)."""

    @abstractmethod
    async def forget(self, before: float, limit: int) -> list[str]:
        """Remove up to `limit` jobs whose `expires_at` is before `before`, with
        their list entries and webhook deliveries, so records do not pile up
        forever; their ids."""

    # -- the webhook outbox ----------------------------------------------------

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
