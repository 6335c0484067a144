"""GET /admin/videos/{id}: any key's video job as the gateway holds it, with
the webhook deliveries of its events and every attempt made on them.
GET /admin/workers: the live `gateway worker` processes of each local video
provider, and its queue's depth."""
from __future__ import annotations

import dataclasses

import orjson

from gateway.admin import authorize
from gateway.asgi import Request
from gateway.errors import ApiError
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.video.jobs import Job


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
