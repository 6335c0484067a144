"""Running video jobs: claim one from a provider's queue, hand it to the
provider (hosted: poll upstream; local: generate), keep the claim alive with
heartbeats while it runs, and finish it: files into the asset store, the job
completed or failed, its webhook events into the outbox, in one store step.

A process that dies mid-job stops heartbeating; once its lease lapses another
runner (or the same gateway, restarted) claims the job and runs it again:
hosted providers resume polling the upstream job, local ones start over. A
job made in segments resumes at the segment in flight (gateway/video/segments.py).
A job whose runs keep dying (`videos.max_runs`) fails rather than loop forever.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.config.schema import VideosConfig
from gateway.images import workers as image_workers
from gateway.leases import renewing
from gateway.metrics import VIDEO_JOBS, VIDEO_SECONDS
from gateway.runtime import Runtime
from gateway.store import Claim, Store, StoreDown
from gateway.video import cache as video_cache
from gateway.video.assets import Assets
from gateway.video.jobs import Job
from gateway.video.segments import Save, made_in_segments, upstream
from gateway.waiting import set_or_after
from gateway.webhooks.delivery import Sender, deliveries_for
from providers.base import Progress, Provider, VideoFiles, VideoSpec
from providers.errors import ProviderError

log = logging.getLogger("gateway.video")

_IDLE_S = 0.25              # between looks at an empty queue
_PROGRESS_EVERY_S = 0.5     # progress is written at most this often


class _Lost(Exception):
    """The job was deleted, or another runner holds it now."""


class Runner:
    """The runs of one provider's queue in this process, up to `slots` at once."""

    def __init__(self, store: Store, assets: Assets, sender: Sender, runtime: Callable[[], Runtime],
                 queue: str, consumer: str, slots: Callable[[], int],
                 event_data: Callable[[Job], dict[str, Any]]) -> None:
        """`runtime()`: the config version a new run takes; `slots()`: how many may run at once now;
        `event_data(job)`: what a webhook event says of a job that ended (Videos.event_data)."""
        self.event_data = event_data
        self.store = store
        self.assets = assets
        self.sender = sender
        self.runtime = runtime
        self.queue = queue
        self.consumer = consumer
        self._slots = slots
        self._running: set[asyncio.Task] = set()
        self._by_job: dict[str, asyncio.Task] = {}
        self._deleted: set[str] = set()
        self._claiming = False
        self._open = asyncio.Event()     # cleared: no new claims (a worker reloading or draining the provider)
        self._open.set()
        self._freed = asyncio.Event()    # a run ended
        self.wake = asyncio.Event()

    def _config(self) -> VideosConfig:
        return self.runtime().config.videos

    @property
    def running(self) -> int:
        return len(self._running)

    def pause(self) -> None:
        """Take no new jobs; the runs in progress go on (`quiet()` waits for them)."""
        self._open.clear()
        self.wake.set()

    def resume(self) -> None:
        self._open.set()

    async def quiet(self) -> None:
        """Once paused: return when no claim is in flight and no run is left."""
        while self._claiming or self._running:
            self._freed.clear()
            await set_or_after(self._freed, _IDLE_S)

    def cancel(self, job_id: str) -> bool:
        """Stop this process's run of a deleted job, if it has one."""
        task = self._by_job.get(job_id)
        if task is None:
            return False
        self._deleted.add(job_id)
        task.cancel()
        return True

    async def run(self) -> None:
        store = self.store
        try:
            while True:
                await self._open.wait()
                if len(self._running) >= self._slots():    # read each time: an edit may change it
                    self._freed.clear()
                    await self._freed.wait()
                    continue
                self._claiming = True
                try:
                    claim = await store.jobs.claim(self.queue, self.consumer, self._config().job_lease_s)
                except StoreDown as e:
                    log.warning("video queue '%s' unreachable: %s", self.queue, e)
                    claim = None
                if claim is None:
                    self._claiming = False
                    self.wake.clear()
                    await set_or_after(self.wake, _IDLE_S)
                    continue
                task = asyncio.create_task(self._run(claim))
                self._running.add(task)
                self._claiming = False
                self._by_job[claim.job_id] = task
                task.add_done_callback(functools.partial(self._finished, job_id=claim.job_id))
        finally:
            # Shutting down: runs stop where they are and stay claimed; their
            # leases lapse and the next runner to look takes them over.
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    def _finished(self, task: asyncio.Task, job_id: str) -> None:
        self._running.discard(task)
        self._by_job.pop(job_id, None)
        self._deleted.discard(job_id)
        self._freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("video run failed unexpectedly", exc_info=task.exception())

    async def _run(self, claim: Claim) -> None:
        store = self.store
        record = await store.jobs.get(claim.job_id)
        if record is None:
            await store.jobs.done(claim)
            return
        job = Job.of(record)
        job.runs = claim.attempt
        if claim.attempt > self._config().max_runs:
            await self.finish_failed(job, claim.token, "worker_lost",
                                     f"the video's generation was interrupted {claim.attempt - 1} times")
            await store.jobs.done(claim)
            return
        rt = self.runtime()
        rt.active += 1     # the provider belongs to this config version: keep it open until the run ends
        try:
            await self._run_on(rt, claim, job)
        finally:
            rt.active -= 1

    async def _run_on(self, rt, claim: Claim, job: Job) -> None:
        store = self.store
        provider = rt.providers.get(job.provider)
        if provider is None:
            await self.finish_failed(job, claim.token, "provider_unavailable",
                                     f"provider '{job.provider}' is no longer configured")
            await store.jobs.done(claim)
            return
        job.status = "in_progress"
        if not await store.jobs.update(job.record(), claim.token):
            await store.jobs.done(claim)
            return
        if job.op == "image":    # a gateway waits for it: no files of its own, no webhooks (images/workers.py)
            work = asyncio.create_task(image_workers.make(rt, self.assets, provider, job))
            # The claim renewed while it runs, as a video's is; lost: its gateway gave up on it (the job is gone).
            if not await renewing(store.jobs, claim, self._config().job_lease_s, work, f"image request {job.id}"):
                return
            job.status, job.error = work.result()
            await store.jobs.update(job.record(), claim.token)
            await store.jobs.done(claim)
            return
        started = time.monotonic()
        try:
            files = await self._generate(provider, job, claim)
        except asyncio.CancelledError:
            if job.id not in self._deleted:
                raise           # shutting down: the claim lapses and the job runs again
            await store.jobs.done(claim)
            return
        except _Lost:
            await provider.video_cancel(job.spec(), upstream(job.state))
            await store.jobs.done(claim)
            return
        except ProviderError as e:
            e.scrubbed(provider.secrets)     # the job's error is shown to its client
            log.info("video %s failed on %s: %s", job.id, job.provider, e.message)
            await self.finish_failed(job, claim.token, e.code or "video_generation_failed", e.message)
            await store.jobs.done(claim)
            return
        if await self.finish_completed(job, claim.token, files):
            VIDEO_SECONDS.observe((job.provider,), time.monotonic() - started)
        await store.jobs.done(claim)

    async def _generate(self, provider: Provider, job: Job, claim: Claim) -> VideoFiles:
        """The provider's run, with a heartbeat beside it that writes progress and
        renews the claim; a lost claim cancels the run."""
        reference = None
        if job.reference_type:
            try:
                reference = await asyncio.to_thread(self.assets.read_whole, job.id, "reference")
            except OSError as e:
                raise ProviderError(f"the job's input_reference could not be read ({e.strerror or type(e).__name__})",
                                    code="storage_error") from None
        latest = [job.progress]

        async def progress(percent: int) -> None:
            latest[0] = max(latest[0], min(99, percent))   # 100 once the files are stored

        writing = asyncio.Lock()    # a segment's new state and the heartbeat's progress: one write at a time

        async def write() -> bool:
            async with writing:
                return await self.store.jobs.update(job.record(), claim.token)

        async def save(state: dict[str, Any]) -> None:
            """A new segment's state, stored before it is waited on: a run that takes over resumes there."""
            job.state = state
            while True:
                try:
                    if not await write():
                        raise _Lost
                    return
                except StoreDown as e:
                    log.warning("video %s: its state could not be stored (%s); retrying", job.id, e)
                    await asyncio.sleep(_IDLE_S * 4)

        spec = job.spec(reference)
        work = asyncio.create_task(self._made_to_fit(provider, spec, job.state, progress, save))
        lost = False
        written = job.progress
        lease_s = self._config().job_lease_s
        beat = min(lease_s / 3, _PROGRESS_EVERY_S)
        last_renew = time.monotonic()
        try:
            while not work.done():
                await asyncio.wait([work], timeout=beat)
                if work.done():
                    break
                try:
                    if latest[0] != written:
                        job.progress = written = latest[0]
                        if not await write():
                            lost = True
                            break
                    if time.monotonic() - last_renew >= lease_s / 3:
                        if not await self.store.jobs.renew(claim, lease_s):
                            lost = True
                            break
                        last_renew = time.monotonic()
                except StoreDown as e:
                    log.warning("video %s: heartbeat failed (%s); retrying", job.id, e)
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        if lost:
            raise _Lost
        return work.result()

    @staticmethod
    async def _made_to_fit(provider: Provider, spec: VideoSpec, state: dict, progress: Progress,
                           save: Save) -> VideoFiles:
        """The provider's video, at the requested size and length: a provider that does not fit
        a fitted request itself makes the generated one (in segments, where planned so), and its
        MP4 is fitted here."""
        if provider.fits_itself or spec.fit is None or not spec.fit.fitted:
            return await provider.video_run(spec, state, progress)
        if spec.segmented:
            files = await made_in_segments(provider, spec, state, progress, save)
            if not (spec.fit.rescaled or spec.fit.retimed):
                return files        # the segments made the size and length as asked
        else:
            files = await provider.video_run(spec.generated(), state, progress)
        from providers.media.fit import refit_mp4  # PyAV loads with the first video that needs it
        try:
            mp4, thumbnail, sheet = await asyncio.to_thread(refit_mp4, files.mp4, spec.width, spec.height,
                                                            spec.seconds)
        except ValueError as e:
            raise ProviderError(f"the provider's video could not be fitted to {spec.size}: {e}",
                                code="invalid_video") from None
        return VideoFiles(mp4, thumbnail, sheet)

    async def finish_completed(self, job: Job, token: str, files: VideoFiles) -> bool:
        """True when the job is completed with its files stored."""
        thumbnail, sheet = files.thumbnail_webp, files.spritesheet_jpeg
        if thumbnail is None or sheet is None:
            from providers.media import previews  # PyAV and Pillow load with the first video that needs them
            try:
                made = await asyncio.to_thread(previews.from_mp4, files.mp4)
            except ValueError as e:
                await self.finish_failed(job, token, "invalid_video", f"the provider's video is unusable: {e}")
                return False
            thumbnail, sheet = thumbnail or made[0], sheet or made[1]
        try:
            await asyncio.to_thread(self.assets.put_all, job.id,
                                    {"video": files.mp4, "thumbnail": thumbnail, "spritesheet": sheet})
        except OSError as e:
            # A disk that refuses now will refuse the next run too: fail at once, not after max_runs renders.
            log.error("video %s: its files could not be stored: %s", job.id, e)
            await asyncio.to_thread(self.assets.delete, job.id)
            why = e.strerror or type(e).__name__
            await self.finish_failed(job, token, "storage_error",
                                     f"the gateway could not store the video's files ({why})")
            return False
        now = int(time.time())
        job.status, job.progress, job.completed_at = "completed", 100, now
        job.expires_at = now + round(self._config().retention_hours * 3600)
        if await self._finish(job, token, "video.completed"):
            log.info("video %s completed on %s", job.id, job.provider)
            await video_cache.keep(self.runtime(), job)
            VIDEO_JOBS.inc((job.model, job.provider, "completed"))
            return True
        await asyncio.to_thread(self.assets.delete, job.id)    # deleted while it ran: its files go too
        return False

    async def finish_failed(self, job: Job, token: str | None, code: str, message: str) -> None:
        job.status, job.completed_at = "failed", int(time.time())
        job.error = {"code": code, "message": message}
        if await self._finish(job, token, "video.failed"):
            VIDEO_JOBS.inc((job.model, job.provider, "failed"))
            await self.runtime().limiter.refund(job.key, job.model, job.provider, job.budget_hold,
                                                        job.cost_nano)

    async def _finish(self, job: Job, token: str | None, event_type: str) -> bool:
        deliveries = deliveries_for(self.runtime().config.webhooks, event_type, job.id, job.callback_url,
                                    self.event_data(job))
        done = await self.store.jobs.update(job.record(), token, deliveries)
        if done and deliveries:
            self.sender.wake.set()
        return done
