"""Image requests made by `gateway worker` processes next to the GPUs: a local
image provider (`diffusers_image`) that does not run in the gateway (with a
shared Redis, unless `run_in_gateway: true`) hands each request to its workers
through the same durable queue as video jobs, and the request waits for the
answer.

The gateway keeps the request (fields and uploads) in the asset store, puts a
job on the provider's queue and looks at it until a worker has finished it:
the worker reads the request, makes the images with the provider's own code,
keeps the answer beside it and marks the job completed (or failed, which fails
over like any provider's failure). The request's deadline bounds the wait; the
job and its files are deleted however it ends. The job belongs to no key, so
no one's video list shows it, and it expires on its own if its gateway dies."""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from gateway.store import StoreDown
from gateway.video.jobs import Job, new_id
from providers.base import Call, Reply, Upload
from providers.errors import ProviderError, RateLimited, UpstreamFault

if TYPE_CHECKING:
    from gateway.runtime import Runtime
    from gateway.video.assets import Assets

log = logging.getLogger("gateway.images")

OWNER = "image-requests"      # no key's id: the jobs are listed to no one
_LOOK_EVERY_S = 0.05
_KEEP_S = 3600                # a job its gateway forgot expires after this


def request_bytes(call: Call) -> bytes:
    """The request as the worker reads it back: its fields, and its uploads in base64."""
    data = {k: v for k, v in call.data.items() if k not in ("image", "mask")}
    uploads = {"image": [_packed(u) for u in call.data.get("image") or []],
               "mask": _packed(call.data["mask"]) if call.data.get("mask") is not None else None}
    return orjson.dumps({"op": call.op, "model": call.model, "data": data, "uploads": uploads})


def request_of(raw: bytes) -> Call:
    doc = orjson.loads(raw)
    data: dict[str, Any] = dict(doc["data"])
    if doc["op"] == "image_edits":
        data["image"] = [_unpacked(u) for u in doc["uploads"]["image"]]
        data["mask"] = _unpacked(doc["uploads"]["mask"]) if doc["uploads"]["mask"] else None
    return Call(doc["op"], b"", data, doc["model"])


def _packed(u: Upload) -> dict[str, str]:
    return {"filename": u.filename, "media_type": u.media_type, "data": base64.b64encode(u.data).decode()}


def _unpacked(d: dict[str, str]) -> Upload:
    return Upload(d["filename"], d["media_type"], base64.b64decode(d["data"]))


async def hand_off(rt: Runtime, provider: str, call: Call) -> Reply:
    """`call` made by one of `provider`'s workers; its failure is this attempt's (the router fails over)."""
    store, videos = rt.store, rt.services.videos
    assert videos is not None, "the app starts the video service (and its asset store) before serving"
    try:
        if not await store.workers.live(provider):
            raise RateLimited(f"provider '{provider}' has no live worker (start one with `gateway worker`)",
                              provider=provider, retry_after=5.0)
        job = Job(new_id(), OWNER, call.model, str(call.data.get("prompt", ""))[:200], "0",
                  str(call.data.get("size") or "auto"), int(time.time()), op="image", provider=provider,
                  target_model=call.model, expires_at=int(time.time()) + _KEEP_S)
        await asyncio.to_thread(videos.assets.put, job.id, "request", request_bytes(call))
        try:
            await store.jobs.create(job.record(), provider)
            videos.queued(provider)
            return await _answer(rt, videos.assets, job.id, provider)
        finally:
            await _forget(rt, videos.assets, job.id)
    except StoreDown as e:
        raise UpstreamFault(f"provider '{provider}': its workers cannot be reached: {e}", provider=provider,
                            code="store_unavailable") from None


async def _answer(rt: Runtime, assets: Assets, job_id: str, provider: str) -> Reply:
    while True:
        await asyncio.sleep(_LOOK_EVERY_S)
        record = await rt.store.jobs.get(job_id)
        if record is None:
            raise UpstreamFault(f"provider '{provider}': the image request was lost", provider=provider)
        if record.status == "failed":
            error = Job.of(record).error or {}
            raise ProviderError(error.get("message", "the worker failed"), provider=provider,
                                code=error.get("code") or "generation_failed")
        if record.status == "completed":
            body = await asyncio.to_thread(assets.read_whole, job_id, "answer")
            if body is None:
                raise UpstreamFault(f"provider '{provider}': the worker's answer is missing", provider=provider)
            return Reply(body=body)


async def make(rt: Runtime, assets: Assets, provider: Any, job: Job) -> tuple[str, dict[str, str] | None]:
    """A worker's side: the request read back and made by the provider here; ("completed", None)
    with the answer kept beside it, or ("failed", the error)."""
    raw = await asyncio.to_thread(assets.read_whole, job.id, "request")
    if raw is None:
        return "failed", {"code": "storage_error", "message": "the image request's files are missing"}
    try:
        reply = await provider.make(request_of(raw))
    except ProviderError as e:
        e.scrubbed(provider.secrets)
        return "failed", {"code": e.code or "generation_failed", "message": e.message}
    await asyncio.to_thread(assets.put, job.id, "answer", reply.body)
    return "completed", None


async def _forget(rt: Runtime, assets: Assets, job_id: str) -> None:
    """The job and its files gone, however the request ended (a cancelled one too)."""
    try:
        await asyncio.shield(rt.store.jobs.delete(job_id))
    except (StoreDown, asyncio.CancelledError):
        pass
    await asyncio.to_thread(assets.delete, job_id)
