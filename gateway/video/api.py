"""The /v1/videos surface, as OpenAI's Videos API (and the SDK's
`client.videos.*`) expects it. Thin: parsing is protocol.py, accepting a job
is submit.py, running it is runner.py."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway import cache
from gateway import protocol as json_protocol
from gateway.asgi import AnswerCut, Headers, Request
from gateway.auth import Key
from gateway.byte_ranges import asked_span
from gateway.errors import ApiError, allowing, bad_request
from gateway.exchange import ATTEMPTS, CACHE, PROVIDER, Dialect, Exchange
from gateway.metrics import CACHE_HITS, CACHE_MISSES, VIDEO_JOBS
from gateway.routes import ServedModel
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.video import cache as video_cache
from gateway.video import protocol, submit
from gateway.video.assets import VARIANTS
from gateway.video.jobs import Job, new_id, owned_by
from gateway.video.segments import upstream
from gateway.video.service import Videos

log = logging.getLogger("gateway.video")

_CHUNK = 1024 * 1024       # file answers are sent in pieces this size
_PUBLIC_VARIANTS = ("video", "thumbnail", "spritesheet")


def _videos(rt: Runtime) -> Videos:
    assert rt.services.videos is not None, "the app starts the video service before serving"
    return rt.services.videos


def _poll_after(rt: Runtime) -> Headers:
    # The SDK's create_and_poll waits this long between retrieves.
    return [(b"openai-poll-after-ms", str(rt.config.videos.poll_after_ms).encode())]


def _not_found(video_id: str) -> ApiError:
    return ApiError(404, f"No video found with id '{video_id[:100]}'.", param="video_id", code="not_found")


def _unavailable() -> ApiError:
    return ApiError(503, "Video jobs cannot be reached right now; try again shortly.", type="server_error",
                    code="jobs_unavailable", headers=[(b"retry-after", b"1")])


async def _own(rt: Runtime, key: Key, video_id: str) -> Job:
    """The key's own job, or 404 (another key's video does not exist for it)."""
    try:
        record = await rt.store.jobs.get(video_id)
    except StoreDown:
        raise _unavailable() from None
    if record is None or not owned_by(record.key, key.id):
        raise _not_found(video_id)
    return Job.of(record)


# How a job is shown: OpenAI's Video object (`Job.video`), or the article's generation
# (gateway/video/generations.py); given the job and its signed video_url once completed.
View = Callable[[Job, str | None], dict[str, Any]]


def openai_video(job: Job, url: str | None) -> dict[str, Any]:
    return job.video(url)


def _shown(req: Request, rt: Runtime, job: Job, view: View = openai_video) -> bytes:
    return job_video(job, public_url(req, rt), rt, view)


def job_video(job: Job, base_url: str, rt: Runtime, view: View = openai_video) -> bytes:
    """`job` as `view` shows it, with a signed `video_url` once it is completed."""
    return orjson.dumps(view(job, video_url_of(job, base_url, rt)))


def video_url_of(job: Job, base_url: str, rt: Runtime) -> str | None:
    if job.status == "completed" and not _expired(job):
        return _videos(rt).video_url(base_url, job.id)
    return None


def public_url(req: Request, rt: Runtime) -> str:
    """`server.public_url`, or the scheme and host this request came in on."""
    if rt.config.server.public_url:
        return rt.config.server.public_url
    host = req.headers.get(b"host", b"").decode("latin-1")
    if not host:
        server = rt.config.server
        host = f"{server.host}:{server.port}"
    return f"{req.scope.get('scheme', 'http')}://{host}"


def _expired(job: Job) -> bool:
    return job.expires_at is not None and job.expires_at <= time.time()


# --- POST /v1/videos, GET /v1/videos -------------------------------------------

class VideoSubmission(Dialect):
    """POST /v1/videos, /v1/videos/{id}/remix, /v1/videos/edits and /extensions:
    a job handed to the first target that takes it (submit.py), through the
    same exchange as every routed request."""
    kind = "video"
    op = "video"
    endpoint = "videos"
    cacheable = False


SUBMISSION = VideoSubmission()


async def videos_root(req: Request, rt: Runtime) -> None:
    if req.method == "POST":
        async with Exchange(req, rt, SUBMISSION) as x:
            await create(x)
    else:
        await list_jobs(req, rt)


async def _read_body(req: Request, rt: Runtime) -> bytes:
    body = await req.body(min(rt.max_body, protocol.MAX_BODY_BYTES))
    if len(body) >= json_protocol.ESTIMATE_FROM and not req.headers.get(b"content-type", b"").startswith(b"multipart/"):
        await json_protocol.check_parse_work(body, rt.max_parse_ms)
    return body


async def create(x: Exchange, view: View = openai_video) -> None:
    req, rt = x.req, x.rt
    x.key = key = rt.keys.authenticate(req.headers)
    body = await _read_body(req, rt)
    routed = {}

    def support(model: str):
        routed["model"] = rt.resolve(key, model, "video")
        x.model = routed["model"][0].name
        return submit.video_support(routed["model"][0])

    vreq = protocol.parse_create(req.headers.get(b"content-type", b""), body, support=support)
    served, strategy = routed["model"]
    await submit.check_urls(rt, vreq.callback_url, vreq.reference_url)
    reference, reference_type = vreq.reference_image, vreq.reference_media_type
    if vreq.reference_url is not None:
        reference, reference_type = await submit.fetch_reference(rt, vreq.reference_url)
    params = {name: value for name in ("negative_prompt", "seed", "style_preset", "camera_movement")
              if (value := getattr(vreq, name)) is not None}
    job = Job(new_id(), key.id, served.name, vreq.prompt, vreq.seconds, vreq.size, int(time.time()),
              key_name=key.name, params=params, reference_type=reference_type if reference else None,
              callback_url=vreq.callback_url)
    lookup = video_cache.lookup_key(served, key, vreq, reference)
    if lookup is not None:
        read, write = cache.directives(req.headers)
        if read and await _from_cache(x, lookup, job, view):
            return
        CACHE_MISSES.inc((served.name,))
        x.headers.append((CACHE, b"miss"))
        job.cache_key = lookup if write else None
    await _accept(x, key, served, strategy, job, reference, view)


async def _from_cache(x: Exchange, lookup: str, job: Job, view: View) -> bool:
    """A hit: a completed copy of the video kept for this request, no generation and no charge."""
    try:
        if not await video_cache.answer(x.rt, _videos(x.rt), lookup, job):
            return False
    except StoreDown:
        raise _unavailable() from None
    except OSError as e:
        log.warning("video cache: could not copy the kept video's files: %s", e)
        return False
    CACHE_HITS.inc((job.model,))
    VIDEO_JOBS.inc((job.model, job.provider, "cached"))
    x.provider, x.cache_hit = job.provider, True
    x.headers += [(CACHE, b"hit"), (PROVIDER, job.provider.encode()), (ATTEMPTS, b"0")]
    await x.req.respond(200, _shown(x.req, x.rt, job, view), x.answering(200, *_poll_after(x.rt)))
    return True


async def _accept(x: Exchange, key: Key, served: ServedModel, strategy: str | None, job: Job,
                  reference: bytes | None, view: View = openai_video) -> None:
    await submit.accept(x, key, _videos(x.rt), served, strategy, job, reference)
    await x.req.respond(200, _shown(x.req, x.rt, job, view), x.answering(200, *_poll_after(x.rt)))


async def list_jobs(req: Request, rt: Runtime, view: View = openai_video) -> None:
    key = rt.keys.authenticate(req.headers)
    q = req.query()
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be 'asc' or 'desc'.", param="order")
    limit_text = q.get("limit", "20")
    # ASCII digits: str.isdigit() also accepts '²' and other scripts' digits, which int() refuses
    if not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 3
            and 1 <= int(limit_text) <= 100):
        raise bad_request("'limit' must be an integer from 1 to 100.", param="limit")
    after = q.get("after") or None
    try:
        records, more = await rt.store.jobs.page(key.id, after, int(limit_text), order)
    except StoreDown:
        raise _unavailable() from None
    data = [orjson.Fragment(_shown(req, rt, Job.of(r), view)) for r in records]
    await req.respond(200, orjson.dumps({
        "object": "list", "data": data, "first_id": records[0].id if records else None,
        "last_id": records[-1].id if records else None, "has_more": more}))


# --- /v1/videos/... ------------------------------------------------------------

async def videos_path(req: Request, rt: Runtime) -> None:
    rest = req.path.split("/videos/", 1)[1]
    video_id, _, action = rest.partition("/")
    if not action and video_id in ("edits", "extensions"):
        allowing(req.method, req.path, ("POST",))
        async with Exchange(req, rt, SUBMISSION) as x:
            await _from_source(x, "edit" if video_id == "edits" else "extend", None)
    elif not action:
        allowing(req.method, req.path, ("GET", "DELETE"))
        await (retrieve(req, rt, video_id) if req.method == "GET" else delete(req, rt, video_id))
    elif action == "content":
        allowing(req.method, req.path, ("GET",))
        await _content(req, rt, video_id)
    elif action == "remix":
        allowing(req.method, req.path, ("POST",))
        async with Exchange(req, rt, SUBMISSION) as x:
            await _from_source(x, "remix", video_id)
    else:
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")


async def retrieve(req: Request, rt: Runtime, video_id: str, view: View = openai_video) -> None:
    key = rt.keys.authenticate(req.headers)
    job = await _own(rt, key, video_id)
    await req.respond(200, _shown(req, rt, job, view), _poll_after(rt))


async def delete(req: Request, rt: Runtime, video_id: str, view: View = openai_video) -> None:
    key = rt.keys.authenticate(req.headers)
    job = await _own(rt, key, video_id)
    try:
        deleted = await rt.store.jobs.delete(video_id)
    except StoreDown:
        raise _unavailable() from None
    if deleted is None:
        raise _not_found(video_id)
    videos = _videos(rt)
    if not job.finished:
        videos.cancel(job.id)       # a run in this process stops now; elsewhere at its next heartbeat
        VIDEO_JOBS.inc((job.model, job.provider, "cancelled"))
        provider = rt.providers.get(job.provider)
        if provider is not None:
            try:
                await provider.video_cancel(job.spec(), upstream(job.state))    # a segment's: the one in flight
            except Exception:   # best effort: the job is gone from the gateway either way
                pass
        await rt.limiter.refund(job.key, job.model, job.provider, job.budget_hold, job.cost_nano)
    await asyncio.to_thread(videos.assets.delete, job.id)
    await req.respond(200, orjson.dumps(deleted_answer(job, view)))


def deleted_answer(job: Job, view: View) -> dict[str, Any]:
    shown = {"id": job.id, "object": "video.deleted", "deleted": True}
    return shown if view is openai_video else {**shown, "job_id": job.id}


async def _from_source(x: Exchange, op: str, video_id: str | None) -> None:
    req, rt = x.req, x.rt
    x.key = key = rt.keys.authenticate(req.headers)
    body = await _read_body(req, rt)
    sreq = protocol.parse_source(req.headers.get(b"content-type", b""), body,
                                 needs_video=video_id is None, needs_seconds=op == "extend")
    source = await _own(rt, key, video_id or sreq.video_id or "")
    if source.status != "completed":
        raise bad_request(f"Video '{source.id}' is {source.status}; only a completed video can be the "
                          f"source of a {op}.", param="video_id" if video_id else "video")
    served, strategy = rt.resolve(key, source.model, "video")
    x.model = served.name
    await submit.check_urls(rt, sreq.callback_url, None)
    seconds = source.seconds if op != "extend" else str(int(source.seconds) + int(sreq.seconds or 0))
    job = Job(new_id(), key.id, served.name, sreq.prompt, seconds, source.size, int(time.time()), op=op,
              key_name=key.name,
              source_id=source.id, remixed_from_video_id=source.id if op == "remix" else None,
              params=dict(source.params), callback_url=sreq.callback_url, provider=source.provider,
              source_state=upstream(source.state), source_seconds=int(source.seconds) if op == "extend" else 0)
    await _accept(x, key, served, strategy, job, None)


# --- GET /v1/videos/{id}/content -------------------------------------------------

async def _content(req: Request, rt: Runtime, video_id: str) -> None:
    q = req.query()
    variant = q.get("variant", "video")
    if variant not in _PUBLIC_VARIANTS:
        raise bad_request(f"'variant' must be one of {', '.join(_PUBLIC_VARIANTS)}.", param="variant")
    videos = _videos(rt)
    if "signature" in q:    # a video_url link: its signature stands in for the key
        if not videos.link_ok(video_id, variant, q.get("expires", ""), q["signature"]):
            raise ApiError(403, "This download link is invalid or has expired; retrieve the video again for "
                                "a fresh video_url.", type="invalid_request_error", code="invalid_signature")
        try:
            record = await rt.store.jobs.get(video_id)
        except StoreDown:
            raise _unavailable() from None
        if record is None:
            raise _not_found(video_id)
        job = Job.of(record)
    else:
        job = await _own(rt, rt.keys.authenticate(req.headers), video_id)
    if job.status != "completed":
        raise ApiError(409, f"Video '{job.id}' is {job.status}; its content is available once it is completed.",
                       code="video_not_ready")
    if _expired(job):
        raise ApiError(410, f"Video '{job.id}' expired at {job.expires_at} and its files were deleted.",
                       code="video_expired")
    filename = f"{job.id}.{VARIANTS[variant][0]}"
    try:     # in a thread: a bucket is a network call, and so may be signing (credentials fetched)
        asset = await asyncio.to_thread(videos.assets.get, job.id, variant)
        elsewhere = None if asset is None else await asyncio.to_thread(videos.assets.download_url, asset, filename)
    except OSError as e:
        log.warning("video %s: its %s file cannot be reached: %s", job.id, variant, e)
        raise ApiError(503, "The video's files cannot be reached right now; try again shortly.",
                       type="server_error", code="storage_unavailable", headers=[(b"retry-after", b"1")]) from None
    if asset is None:
        raise ApiError(404, f"Video '{job.id}' has no {variant} file.", code="not_found")
    if elsewhere is not None:    # `downloads: redirect`: the bucket sends the bytes (and answers Range itself)
        await req.respond(302, b"", [(b"location", elsewhere.encode()), (b"cache-control", b"no-store")],
                          content_type=b"text/plain")
        return
    headers: Headers = [(b"accept-ranges", b"bytes"), (b"cache-control", b"private, max-age=3600"),
                        (b"content-disposition", f'inline; filename="{filename}"'.encode())]
    first, last, status = asked_span(req, asset.size, headers)
    await req.start(status, headers, asset.media_type.encode(), last - first + 1)
    position = first
    while position <= last:
        end = min(last, position + _CHUNK - 1)
        try:
            data = await asyncio.to_thread(videos.assets.read, asset, position, end)
        except OSError:     # deleted at expiry (or the disk failed) mid-download
            data = b""
        if not data:
            raise AnswerCut(f"video {job.id}'s {variant} file went after {position - first} of "
                            f"{last - first + 1} bytes")
        await req.send_chunk(data)
        position += len(data)
    await req.end_stream()
