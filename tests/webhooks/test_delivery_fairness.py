"""Webhook deliveries do not wait on each other: a receiver that is slow (or
never answers) holds up only its own deliveries, not another key's or another
endpoint's. Real receivers on loopback, the real sender over the embedded store."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from gateway.config.schema import WebhooksConfig
from gateway.store import Delivery, JobRecord
from gateway.store.embedded import EmbeddedStore
from gateway.webhooks.delivery import Sender
from gateway.webhooks.signing import new_secret
from tests.harness import free_port


class _Receiver:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.arrived: list[float] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _hook(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived.append(time.monotonic())
        await asyncio.sleep(self.delay_s)
        return web.Response(text="ok")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _queue(store: EmbeddedStore, job_id: str, urls: list[str]) -> None:
    record = JobRecord(job_id, "k", "queued", b"{}")
    await store.jobs.create(record, "mock")
    done = JobRecord(job_id, "k", "completed", b"{}")
    now = time.time()
    await store.jobs.update(done, None, [Delivery(f"evt_{job_id}.{i}", f"evt_{job_id}", url, b"{}", job_id,
                                                  next_at=now) for i, url in enumerate(urls)])


def _run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def test_a_slow_receiver_does_not_hold_up_another(tmp_path):
    async def scenario() -> None:
        slow, fast = _Receiver(delay_s=5.0), _Receiver(delay_s=0.0)
        await slow.start()
        await fast.start()
        store = EmbeddedStore(tmp_path)
        await store.start()
        hooks = WebhooksConfig(secret=new_secret(), allow_hosts=["127.0.0.1"], timeout_s=10)
        sender = Sender(store, lambda: hooks)
        try:
            for i in range(20):                          # one key's jobs, all to its slow callback
                await _queue(store, f"video_slow{i:02d}", [slow.url])
            await _queue(store, "video_fast", [fast.url])    # another's, queued after them
            started = time.monotonic()
            task = asyncio.create_task(sender.run())
            while not fast.arrived and time.monotonic() - started < 8:
                await asyncio.sleep(0.02)
            assert fast.arrived, "the fast receiver's event waited on the slow one"
            assert fast.arrived[0] - started < 2.0
            # The slow receiver is never given more than its share at once.
            await asyncio.sleep(0.5)
            assert 1 <= len(slow.arrived) <= 4
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await sender.close()
            await store.close()
            await slow.close()
            await fast.close()

    _run(scenario())


def test_deliveries_to_one_busy_receiver_all_arrive_in_the_end(tmp_path):
    async def scenario() -> None:
        busy = _Receiver(delay_s=0.2)
        await busy.start()
        store = EmbeddedStore(tmp_path)
        await store.start()
        hooks = WebhooksConfig(secret=new_secret(), allow_hosts=["127.0.0.1"], timeout_s=10)
        sender = Sender(store, lambda: hooks)
        try:
            for i in range(10):
                await _queue(store, f"video_busy{i:02d}", [busy.url])
            task = asyncio.create_task(sender.run())
            deadline = time.monotonic() + 20
            while len(busy.arrived) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(busy.arrived) == 10
            await asyncio.sleep(0.5)
            delivered = [d for i in range(10) for d in await store.jobs.deliveries(f"video_busy{i:02d}")]
            assert {d.status for d in delivered} == {"delivered"} and all(d.attempts == 1 for d in delivered)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await sender.close()
            await store.close()
            await busy.close()

    _run(scenario())
