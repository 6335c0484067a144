"""The video cache, for video models with `cache: {ttl_s, shared}`.

An identical request (the same served model, prompt, size, seconds, seed,
negative prompt, style, camera movement and reference image) within `ttl_s`
of a completed video is answered at once with a new video of its own whose
files are copies of that one's: no generation, no generation charge, and not
counted against `videos_per_hour`. Each key sees only its own videos unless
the cache is `shared`. `cache-control: no-cache` skips the lookup (the new
video is still kept for the next), `no-store` skips both.

The entry (the state store's cache: one for every replica on Redis) holds the
id of the video it was made from; a video deleted or expired since is a miss.
The files are copied, not shared, so deleting either video leaves the other."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING

from gateway import cache
from gateway.auth import Key
from gateway.routes import ServedModel
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.video.jobs import Job
from gateway.video.protocol import VideoRequest
from gateway.webhooks.delivery import deliveries_for

if TYPE_CHECKING:    # the service runs jobs that keep themselves here: no import at run time
    from gateway.video.service import Videos

log = logging.getLogger("gateway.video")

_FILES = ("video", "thumbnail", "spritesheet")


def lookup_key(served: ServedModel, key: Key, vreq: VideoRequest, reference: bytes | None) -> str | None:
    """Where this request's video is kept (None: the model keeps none)."""
    if served.cache is None:
        return None
    fields = {"prompt": vreq.prompt, "size": vreq.size, "seconds": vreq.seconds, "seed": vreq.seed,
              "negative_prompt": vreq.negative_prompt, "style_preset": vreq.style_preset,
              "camera_movement": vreq.camera_movement,
              "reference": hashlib.sha256(reference).hexdigest() if reference is not None else None}
    return cache.lookup_key(served.cache, key.id, served.name, "video", fields)


def ttl_s(rt: Runtime, model: str) -> float | None:
    """How long a completed video of `model` answers for its request (None: not kept):
    the model's ttl_s, at most until the video's files expire."""
    served = rt.models.get(model)
    if served is None or served.cache is None:
        return None
    return min(served.cache.ttl_s, rt.config.videos.retention_hours * 3600)


async def keep(rt: Runtime, job: Job) -> None:
    """A completed video answers its request from now on (best effort: a store that fails misses)."""
    ttl = ttl_s(rt, job.model) if job.cache_key else None
    if ttl is None or job.cache_key is None:
        return
    try:
        await rt.store.cache.put(job.cache_key, job.id.encode(), ttl)
    except StoreDown as e:
        log.warning("video %s: not kept in the cache: %s", job.id, e)


async def answer(rt: Runtime, videos: Videos, lookup: str, job: Job) -> bool:
    """Make `job` (a new, unstored job) a copy of the video kept for `lookup`; False on a miss."""
    try:
        found = await rt.store.cache.get(lookup)
        record = await rt.store.jobs.get(found.decode()) if found else None
    except StoreDown:
        return False                     # a cache that cannot answer is a miss
    if record is None or record.status != "completed" or (record.expires_at or 0) <= time.time():
        return False
    source = Job.of(record)
    files = await asyncio.to_thread(_read, videos, source.id)
    if files is None:
        return False                     # its files went (expired or deleted meanwhile)
    now = int(time.time())
    job.provider, job.target_model, job.fit = source.provider, source.target_model, source.fit
    job.status, job.progress, job.completed_at = "in_progress", 0, None
    await asyncio.to_thread(videos.assets.put_all, job.id, files)
    try:
        await rt.store.jobs.create(job.record(), "")     # on no queue: nothing will run it
        job.status, job.progress, job.completed_at = "completed", 100, now
        job.expires_at = now + round(rt.config.videos.retention_hours * 3600)
        deliveries = deliveries_for(rt.config.webhooks, "video.completed", job.id, job.callback_url,
                                    videos.event_data(job))
        await rt.store.jobs.update(job.record(), None, deliveries)
    except StoreDown:
        await asyncio.to_thread(videos.assets.delete, job.id)
        raise
    if deliveries:
        videos.sender.wake.set()
    return True


def _read(videos: Videos, video_id: str) -> dict[str, bytes] | None:
    files = {}
    for variant in _FILES:
        data = videos.assets.read_whole(video_id, variant)
        if data is None:
            return None
        files[variant] = data
    return files

