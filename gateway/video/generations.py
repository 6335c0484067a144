"""`/v1/video/generations`: the video API as the project's founding article
describes it, over the same jobs as `/v1/videos` (one job, visible on both
paths, with the same limits, cost and webhooks).

    POST   /v1/video/generations            {"model", "prompt", "duration", "resolution", "style_preset",
                                             "camera_movement", "seed", "negative_prompt", "callback_url"}
    GET    /v1/video/generations            the key's jobs, newest first (limit, after, order)
    GET    /v1/video/generations/{job_id}
    DELETE /v1/video/generations/{job_id}

A generation is OpenAI's Video object plus the article's names for its fields:
`job_id` (the same as `id`), `duration` and `resolution` (of `seconds` and
`size`), `video_url` once completed and `error_message` once failed."""
from __future__ import annotations

from typing import Any

from gateway.asgi import Request
from gateway.errors import ApiError, allowing
from gateway.exchange import Exchange
from gateway.runtime import Runtime
from gateway.video import api
from gateway.video.jobs import Job


def generation(job: Job, url: str | None) -> dict[str, Any]:
    shown = job.video(url)
    shown.update(object="video.generation", job_id=job.id, duration=int(job.seconds), resolution=job.size)
    if job.error is not None:
        shown["error_message"] = job.error.get("message", "")
    return shown


async def generations_root(req: Request, rt: Runtime) -> None:
    if req.method == "POST":
        async with Exchange(req, rt, api.SUBMISSION) as x:
            await api.create(x, generation)
    else:
        await api.list_jobs(req, rt, generation)


async def generations_path(req: Request, rt: Runtime) -> None:
    job_id, _, rest = req.path.split("/generations/", 1)[1].partition("/")
    if rest:
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")
    if req.method == "GET":
        await api.retrieve(req, rt, job_id, generation)
    elif req.method == "DELETE":
        await api.delete(req, rt, job_id, generation)
    else:
        allowing(req.method, req.path, ("GET", "DELETE"))
