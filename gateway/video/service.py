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
from typing import Any

from gateway.config.schema import Config, VideosConfig, WebhooksConfig
from gateway.runtime import Runtime
from gateway.store import Store, StoreDown
from gateway.video import links
from gateway.video.assets import Assets, LocalAssets
from gateway.video.assets_s3 import S3Assets
from gateway.video.jobs import Job
from gateway.video.runner import Runner
from gateway.waiting import set_or_after
from gateway.webhooks.delivery import Sender

log = logging.getLogger("gateway.video")

_SWEEP_EVERY_S = 60.0


def open_assets(cfg: Config) -> Assets:
    """The store `videos.assets` names, as the process starts (an edit to it applies at a restart)."""
    if cfg.videos.assets.type == "s3":
        return S3Assets(cfg.videos.assets)
    return LocalAssets(cfg.videos.assets_dir or Path(cfg.state.data_dir) / "videos")


class Videos:
    def __init__(self, store: Store, runtime: Callable[[], Runtime]) -> None:
        """`runtime()`: the config version in force now."""
        self.runtime = runtime
        rt = runtime()
        self.store = store
        cfg = rt.config
        self.assets = open_assets(cfg)
        self.sender = Sender(self.store, self.webhooks)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.runners: dict[str, Runner] = {}
        self._runner_tasks: dict[str, asyncio.Task] = {}
        self._woken: asyncio.Task | None = None     # the queue events' task, from the first runner on
        self._beat_now = asyncio.Event()
        self._beating = asyncio.Lock()              # one round of heartbeats at a time (a leave is the last word)
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
        named ones (`gateway worker`, which also heartbeats `worker` info for
        each provider it serves, and adds and drops them with `serve` and
        `stop_serving` as its config changes)."""
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
            self._tasks.append(asyncio.create_task(self._heartbeat(worker), name="worker-heartbeat"))
        if serving or worker is not None or rt.config.webhooks.secret:
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

    def serve(self, name: str, runtime: Callable[[], Runtime]) -> Runner:
        """`gateway worker`: start taking `name`'s jobs, each run on the config version
        `runtime()` gives when it starts (the worker moves it on as versions apply)."""
        self._start_runner(name, runtime)
        self._beat_now.set()
        return self.runners[name]

    async def stop_serving(self, name: str) -> None:
        """`gateway worker`: take no more of `name`'s jobs, let its runs in progress
        finish, then stop its runner and leave its workers at once."""
        runner = self.runners[name]
        runner.pause()
        await runner.quiet()
        task = self._runner_tasks.pop(name)
        self._tasks.remove(task)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with self._beating:
            del self.runners[name]
            try:    # a beat that lapses at once: gateways stop counting this worker for it now
                await self.store.workers.beat(name, self.consumer, {"provider": name, "running": 0}, 0)
            except StoreDown as e:
                log.warning("worker heartbeat failed: %s (its entry for '%s' lapses with its lease)", e, name)

    def _start_runner(self, name: str, runtime: Callable[[], Runtime] | None = None) -> None:
        runtime = runtime or self.runtime
        runner = self.runners[name] = Runner(self.store, self.assets, self.sender,
                                             runtime, name, self.consumer, _slots(runtime, name), self.event_data)
        task = self._runner_tasks[name] = asyncio.create_task(runner.run(), name=f"video-runner-{name}")
        self._tasks.append(task)
        if self._woken is None:
            self._woken = asyncio.create_task(self._wake_on_queued(), name="video-queue-events")
            self._tasks.append(self._woken)

    def cancel(self, job_id: str) -> None:
        """A job was deleted: stop its run here, if this process has it."""
        for runner in self.runners.values():
            if runner.cancel(job_id):
                return

    def video_url(self, base_url: str, video_id: str, variant: str = "video") -> str:
        """A signed download link on `base_url` (`server.public_url`, else where the client reached us)."""
        return links.signed_url(base_url, self._link_secret, video_id, variant, self.config().link_ttl_s)

    def event_data(self, job: Job) -> dict[str, Any]:
        """What a webhook event says of a job that ended, beside OpenAI's `id`: the article's
        fields, so a receiver can fetch the video without an API call. The link is on
        server.public_url (else the address the gateway listens on) and expires as any."""
        more: dict[str, Any] = {"job_id": job.id, "status": job.status}
        if job.status == "completed":
            server = self.runtime().config.server
            more["video_url"] = self.video_url(server.public_url or f"http://{_reachable(server.host)}:{server.port}",
                                               job.id)
        elif job.error is not None:
            more["error_message"] = job.error.get("message", "")
        return more

    def image_url(self, base_url: str, image_id: str) -> str:
        """A signed link to an image kept for a `response_format: url` answer (gateway/images/links.py)."""
        return links.signed_url(base_url, self._link_secret, image_id, "image", self.config().link_ttl_s,
                                collection="images")

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

    async def _heartbeat(self, info: dict) -> None:
        """Tell the store this worker is alive and what it serves (with the config
        version each provider's jobs run on), every lease/3 and when that changes:
        gateways route to a local provider only while one of its workers is."""
        while True:
            lease_s = self.config().job_lease_s
            self._beat_now.clear()
            async with self._beating:
                for name, runner in list(self.runners.items()):
                    about = {**info, "provider": name, "running": runner.running,
                             "config_version": runner.runtime().version}
                    try:
                        await self.store.workers.beat(name, self.consumer, about, lease_s)
                    except StoreDown as e:
                        log.warning("worker heartbeat failed: %s", e)
            await set_or_after(self._beat_now, lease_s / 3)

    def beat_now(self) -> None:
        """Heartbeat at once (a worker's provider moved to another config version)."""
        self._beat_now.set()

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


def _slots(runtime: Callable[[], Runtime], name: str) -> Callable[[], int]:
    """How many of `name`'s jobs may run at once in this process: read at each claim,
    so an edit to `max_concurrent` applies to the next job."""
    def slots() -> int:
        provider = runtime().providers.get(name)
        return (getattr(provider.options, "max_concurrent", None) if provider is not None else None) or 16
    return slots


def _reachable(host: str) -> str:
    """A listening address as a URL's host: a wildcard as loopback, IPv6 in brackets."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
