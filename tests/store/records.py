"""Jobs and webhook deliveries as the gateway makes them, for the jobs contract tests."""
from __future__ import annotations

import itertools
import time

from gateway.store import Delivery, JobRecord

LEASE_S = 0.3
_seq = itertools.count(1)


def job(key: str = "alice", status: str = "queued", expires_at: int | None = None) -> JobRecord:
    """A new job; ids sort by creation, as the gateway's do."""
    n = next(_seq)
    return JobRecord(f"video_{time.time_ns():020x}{n:06x}", key, status,
                     b'{"id": %d, "prompt": "a cat \xc3\xa9"}' % n, expires_at)


def finished(j: JobRecord, status: str = "completed", expires_at: int | None = 2_000_000_000) -> JobRecord:
    return JobRecord(j.id, j.key, status, j.data + b" ", expires_at)


def delivery(j: JobRecord, n: int, next_at: float) -> Delivery:
    return Delivery(f"dlv_{j.id}_{n}", f"evt_{n}", f"https://example.test/hook/{n}",
                    b'{"type": "video.completed", "data": {"id": "%s", "caf\xc3\xa9": %d}}' % (j.id.encode(), n),
                    j.id, next_at=next_at)


async def created(store, n: int, queue: str = "sora", key: str = "alice") -> list[JobRecord]:
    jobs = [job(key) for _ in range(n)]
    for j in jobs:
        await store.jobs.create(j, queue)
    return jobs


def ids(jobs) -> list[str]:
    return [j.id for j in jobs]
