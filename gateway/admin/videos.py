"""GET /admin/videos: the newest jobs of every key, for the console's gallery.
GET /admin/videos/{id}: any key's video job as the gateway holds it, with
the webhook deliveries of its events and every attempt made on them.
GET /admin/workers: the live `gateway worker` processes of each local video
provider, and its queue's depth."""
from __future__ import annotations

import dataclasses
import re

import orjson

from gateway.admin import authorize
from gateway.asgi import Request
from gateway.errors import ApiError, bad_request
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.video.api import job_video, public_url
from gateway.video.jobs import Job

_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")


async def video_path(req: Request, rt: Runtime) -> None:
    """/admin/videos/{id} and /admin/videos/{id}/content."""
    await (video_content if req.path.endswith("/content") else video_job)(req, rt)


async def video_job(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    video_id = req.path.rsplit("/", 1)[1]
    try:
        record = await rt.store.jobs.get(video_id)
        deliveries = await rt.store.jobs.deliveries(video_id) if record is not None else []
    except StoreDown:
        raise ApiError(503, "Video jobs cannot be reached right now.", type="server_error",
                       code="jobs_unavailable") from None
    if record is None:
        raise ApiError(404, f"No video found with id '{video_id[:100]}'.", code="not_found")
    job = dataclasses.asdict(Job.of(record))
    # The provider's state may hold signed upstream URLs: shown by field name only.
    job["state"] = sorted(job["state"])
    job.pop("source_state", None)
    out = {"job": job, "deliveries": [
        {"id": d.id, "event_id": d.event_id, "url": d.url, "status": d.status, "attempts": d.attempts,
         "next_at": d.next_at, "history": d.history, "event": orjson.Fragment(d.body)} for d in deliveries]}
    await req.respond(200, orjson.dumps(out))


async def workers(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    out = {}
    try:
        for name, provider in rt.providers.items():
            if provider.local:
                out[name] = {"runs_in_gateway": provider.runs_in(embedded=not rt.config.state.redis_url),
                             "queue_depth": await rt.store.jobs.queue_depth(name),
                             "workers": await rt.store.workers.live(name)}
    except StoreDown:
        raise ApiError(503, "The state store cannot be reached right now.", type="server_error",
                       code="store_unavailable") from None
    await req.respond(200, orjson.dumps({"providers": out}))


async def recent_videos(req: Request, rt: Runtime) -> None:
    """GET /admin/videos?limit=: the newest jobs of every configured key, each as
    OpenAI's video object plus its key's name, and signed links to its thumbnail
    and (when completed) its MP4, for the console's gallery."""
    authorize(req, rt)
    text = req.query().get("limit", "30")
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= 100):
        raise bad_request("'limit' must be an integer from 1 to 100.", param="limit")
    limit = int(text)
    found: list[tuple[Job, str]] = []
    try:
        for key in rt.keys.all():
            records, _ = await rt.store.jobs.page(key.id, None, limit, "desc")
            found += [(Job.of(r), key.name) for r in records]
    except StoreDown:
        raise ApiError(503, "Video jobs cannot be reached right now.", type="server_error",
                       code="jobs_unavailable") from None
    found.sort(key=lambda jk: jk[0].created_at, reverse=True)
    base = public_url(req, rt)
    videos = rt.services.videos
    data = []
    for job, key_name in found[:limit]:
        shown = orjson.loads(job_video(job, base, rt))
        shown["key"] = key_name
        if videos is not None and job.status == "completed":
            shown["thumbnail_url"] = videos.video_url(base, job.id, "thumbnail")
        data.append(shown)
    await req.respond(200, orjson.dumps({"data": data}))


async def video_content(req: Request, rt: Runtime) -> None:
    """GET /admin/videos/{id}/content?variant=: a redirect to the file's signed link."""
    authorize(req, rt)
    video_id = req.path.split("/")[3]
    if not _ID.fullmatch(video_id):     # it goes into a Location header: only an id's own characters
        raise ApiError(404, f"No video found with id '{video_id[:100]!r}'.", code="not_found")
    variant = req.query().get("variant", "video")
    if variant not in ("video", "thumbnail", "spritesheet"):
        raise bad_request("'variant' must be video, thumbnail or spritesheet.", param="variant")
    videos = rt.services.videos
    if videos is None:
        raise ApiError(503, "Videos are not available in this process yet.", type="server_error",
                       code="jobs_unavailable")
    await req.respond(307, b"", [(b"location", videos.video_url(public_url(req, rt), video_id, variant)
                                  .encode())])
