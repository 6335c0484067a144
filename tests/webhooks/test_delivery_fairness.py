"""Webhook deliveries do not wait on each other: a receiver that is slow (or
never answers) holds up only its own deliveries, not another key's or another
endpoint's. Real receivers on loopback, the real sender over the embedded store."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from gateway.config.schema import WebhooksConfig
from gateway.store import Delivery, JobRecord
from gateway.store.embedded import EmbeddedStore
from gateway.webhooks.delivery import Sender
from gateway.webhooks.signing import new_secret
from tests.video.conftest import receiver  # noqa: F401 (the fixture)


async def _queue(store: EmbeddedStore, job_id: str, url: str) -> None:
    await store.jobs.create(JobRecord(job_id, "k", "queued", b"{}"), "mock")
    await store.jobs.update(JobRecord(job_id, "k", "completed", b"{}"), None,
                            [Delivery(f"evt_{job_id}.0", f"evt_{job_id}", url, b"{}", job_id, next_at=time.time())])


def _sending(folder: Path, queue: Callable[[EmbeddedStore], Awaitable[None]],
             check: Callable[[EmbeddedStore, float], Awaitable[None]]) -> None:
    """`queue(store)`, then a sender works the store's outbox while `check(store, started)` runs."""
    async def run() -> None:
        store = EmbeddedStore(folder)
        await store.start()
        hooks = WebhooksConfig(secret=new_secret(), allow_hosts=["127.0.0.1"], timeout_s=10)
        sender = Sender(store, lambda: hooks)
        task = None
        try:
            await queue(store)
            task = asyncio.create_task(sender.run())
            await check(store, time.monotonic())
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await sender.close()
            await store.close()
    asyncio.run(asyncio.wait_for(run(), 60))


async def _until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def test_a_slow_receiver_does_not_hold_up_another(tmp_path, receiver):  # noqa: F811
    slow, fast = receiver(delay_s=5.0), receiver()

    async def queue(store: EmbeddedStore) -> None:
        for i in range(20):                              # one key's jobs, all to its slow callback
            await _queue(store, f"video_slow{i:02d}", slow.url)
        await _queue(store, "video_fast", fast.url)      # another's, queued after them

    async def check(store: EmbeddedStore, started: float) -> None:
        await _until(lambda: bool(fast.received), 8)
        assert fast.received, "the fast receiver's event waited on the slow one"
        assert fast.received[0].at - started < 2.0
        await asyncio.sleep(0.5)
        assert 1 <= len(slow.received) <= 4                  # never more than its share at once

    _sending(tmp_path, queue, check)


def test_deliveries_to_one_busy_receiver_all_arrive_in_the_end(tmp_path, receiver):  # noqa: F811
    busy = receiver(delay_s=0.2)

    async def queue(store: EmbeddedStore) -> None:
        for i in range(10):
            await _queue(store, f"video_busy{i:02d}", busy.url)

    async def check(store: EmbeddedStore, started: float) -> None:
        await _until(lambda: len(busy.received) == 10, 20)
        assert len(busy.received) == 10
        await asyncio.sleep(0.5)
        delivered = [d for i in range(10) for d in await store.jobs.deliveries(f"video_busy{i:02d}")]
        assert {d.status for d in delivered} == {"delivered"} and all(d.attempts == 1 for d in delivered)

    _sending(tmp_path, queue, check)
