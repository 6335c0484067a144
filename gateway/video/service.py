"""What a gateway process runs for video besides its HTTP handlers: the asset
store, `video_url` signing, a runner per provider whose jobs run in the
gateway (hosted providers, mock), the webhook sender and the expiry sweeper.
Started and stopped with the app (lifespan)."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from gateway.config.schema import VideosConfig, WebhooksConfig
from gateway.runtime import Runtime
from gateway.store import Store, StoreDown
from gateway.video import links
from gateway.video.assets import LocalAssets
from gateway.video.runner import Runner
from gateway.webhooks.delivery import Sender

log = logging.getLogger("gateway.video")

_SWEEP_EVERY_S = 60.0


class Videos:
    def __init__(self, store: Store, runtime: Callable[[], Runtime]) -> None:
        """`runtime()`: the config version in force now."""
        self.runtime = runtime
        rt = runtime()
        self.store = store
        cfg = rt.config
        self.assets = LocalAssets(cfg.videos.assets_dir or Path(cfg.state.data_dir) / "videos")
        self.sender = Sender(self.store, self.webhooks)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.runners: dict[str, Runner] = {}
        self._link_secret: bytes = cfg.videos.link_secret.encode()
        self._tasks: list[asyncio.Task] = []
        self.worker_mode = False

    def config(self) -> VideosConfig:
        return self.runtime().config.videos

    def webhooks(self) -> WebhooksConfig:
        return self.runtime().config.webhooks

    async def start(self, providers: list[str] | None = None, worker: dict | None = None) -> None:
        """Start runners for the providers this process serves: those its video
        models route to and that run in the gateway (`gateway serve`), or the
        named ones (`gateway worker`, which also heartbeats `worker` info)."""
        if not self._link_secret:
            try:
                self._link_secret = await self.store.secret("video-links")
            except StoreDown:    # links are signed with a per-process secret until the store is back
                log.warning("state store unreachable: video_url links from this process are signed with a "
                            "secret of its own until restart")
                self._link_secret = os.urandom(32)
        rt = self.runtime()
        if providers is None:
            # Runners only for providers some video model routes to: no queue to watch otherwise.
            serving = {t.provider.name for m in rt.models.values() if m.kind == "video" for t in m.targets}
            embedded = not rt.config.state.redis_url
            providers = [n for n in sorted(serving) if rt.providers[n].runs_in(embedded=embedded)]
        else:
            serving = set(providers)
        self.worker_mode = worker is not None
        for name in providers:
            self._start_runner(name)
        if worker is not None:
            self._tasks.append(asyncio.create_task(self._heartbeat(providers, worker), name="worker-heartbeat"))
        if self.runners:
            self._tasks.append(asyncio.create_task(self._wake_on_queued(), name="video-queue-events"))
        if serving or rt.config.webhooks.secret:
            self._tasks.append(asyncio.create_task(self.sender.run(), name="webhook-sender"))
            self._tasks.append(asyncio.create_task(self._sweep(), name="video-expiry"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.sender.close()

    def queued(self, provider: str) -> None:
        """A job was just put on `provider`'s queue: its runner here looks now."""
        runner = self.runners.get(provider)
        if runner is not None:
            runner.wake.set()

    def refresh(self) -> None:
        """A new config version: start runners for providers that video models now route to."""
        if self.worker_mode:
            return
        rt = self.runtime()
        embedded = not rt.config.state.redis_url
        serving = {t.provider.name for m in rt.models.values() if m.kind == "video" for t in m.targets}
        for name in sorted(serving - set(self.runners)):
            if rt.providers[name].runs_in(embedded=embedded):
                self._start_runner(name)

    def _start_runner(self, name: str) -> None:
        slots = getattr(self.runtime().providers[name].options, "max_concurrent", None) or 16
        runner = self.runners[name] = Runner(self.store, self.assets, self.sender, self.runtime, name,
                                             self.consumer, slots)
        self._tasks.append(asyncio.create_task(runner.run(), name=f"video-runner-{name}"))

    def cancel(self, job_id: str) -> None:
        """A job was deleted: stop its run here, if this process has it."""
        for runner in self.runners.values():
            if runner.cancel(job_id):
                return

    def video_url(self, base_url: str, video_id: str, variant: str = "video") -> str:
        """A signed download link on `base_url` (`server.public_url`, else where the client reached us)."""
        return links.signed_url(base_url, self._link_secret, video_id, variant, self.config().link_ttl_s)

    def link_ok(self, video_id: str, variant: str, expires: str, signature: str) -> bool:
        return links.verify(self._link_secret, video_id, variant, expires, signature)

    async def _wake_on_queued(self) -> None:
        """Start a job the moment any replica queues it, not at the next look."""
        while True:
            try:
                async for queue in self.store.jobs.queue_events():
                    self.queued(queue)
            except StoreDown as e:
                log.debug("queue events unavailable (%s); runners keep looking on their own", e)
                await asyncio.sleep(1.0)

    async def _heartbeat(self, providers: list[str], info: dict) -> None:
        """Tell the store this worker is alive and what it serves, every lease/3:
        gateways route to a local provider only while one of its workers is."""
        while True:
            lease_s = self.config().job_lease_s
            for name in providers:
                try:
                    await self.store.workers.beat(name, self.consumer,
                                                 {**info, "provider": name, "running": self.runners[name].running},
                                                 lease_s)
                except StoreDown as e:
                    log.warning("worker heartbeat failed: %s", e)
            await asyncio.sleep(lease_s / 3)

    async def _sweep(self) -> None:
        """Delete the files of jobs past `expires_at` (the content endpoint
        refuses them from that second on; this frees the disk), and the jobs'
        records `keep_jobs_days` after that."""
        while True:
            interval = min(_SWEEP_EVERY_S, max(0.5, self.config().retention_hours * 3600 / 4))
            await asyncio.sleep(interval)
            try:
                while ids := await self.store.jobs.expiring(time.time(), 100):
                    for video_id in ids:
                        await asyncio.to_thread(self.assets.delete, video_id)
                # Records go too, long after: a job listed and retrievable for keep_jobs_days more.
                forget_before = time.time() - self.config().keep_jobs_days * 86400
                while ids := await self.store.jobs.forget(forget_before, 100):
                    for video_id in ids:    # files whose expiry sweep was missed (a store outage)
                        await asyncio.to_thread(self.assets.delete, video_id)
            except StoreDown as e:
                log.warning("video expiry sweep skipped: %s", e)
