"""A fake OpenAI Videos API (Sora) on loopback: jobs that go queued, then
in_progress with rising progress, then completed, a real small MP4 (and
previews) to download, and knobs to fail the ways the real one does.

Point a provider at it with `base_url: fake.url` (…/v1) and `api_key: fake.key`.
"""
from __future__ import annotations

import email.parser
import email.policy
import itertools
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.server import Behaviour, FakeServer, json_response
from tests.upstreams.video_sample import sample

RECORDED = DATA / "openai_video"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass
class VideoBehaviour(Behaviour):
    """`fail(status, body)` refuses submits (POSTs); these shape the jobs."""
    queued_polls: int = 1              # status checks that answer "queued"
    progress_polls: int = 3            # then this many "in_progress", progress rising
    job_error: dict | None = None      # the job fails with this `error` {code, message} once queued
    extension_error: dict | None = None   # the same, for extensions only
    lengths: tuple[str, ...] = ("4", "8", "12")   # the `seconds` a create or an extension takes (else 400)
    poll_failures: int = 0             # the first N status checks answer 500
    redirect_download: bool = False    # /content?variant=video answers 302 to /v1/files/<id>.mp4
    previews: bool = True              # thumbnail and spritesheet variants exist (else 404)
    video_bytes: bytes | None = None   # served as the video instead of the sample (a hostile answer)


def parse_form(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body: text parts as str, files as (filename, media type, bytes)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        out[name] = (filename, part.get_content_type(), data) if filename else data.decode()
    return out


class FakeOpenAIVideo(FakeServer):
    knobs = VideoBehaviour

    def __init__(self, loop: Loop, key: str = "sk-video") -> None:
        self.key = key
        self.jobs: dict[str, dict[str, Any]] = {}
        self.forms: list[dict[str, Any]] = []          # each submit's fields, parsed
        self.deleted: list[str] = []
        self.extended: list[tuple[str, str]] = []       # (source id, extension id), in the order submitted
        self._ids = itertools.count(1)
        self._poll_failures = 0
        self.template = orjson.loads(recorded("video_queued.json"))
        super().__init__(loop, "/v1")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/videos", self._create)
        app.router.add_post("/v1/videos/edits", self._edit)
        app.router.add_post("/v1/videos/extensions", self._extend)
        app.router.add_post("/v1/videos/{id}/remix", self._remix)
        app.router.add_get("/v1/videos/{id}", self._status)
        app.router.add_delete("/v1/videos/{id}", self._delete)
        app.router.add_get("/v1/videos/{id}/content", self._content)
        app.router.add_get("/v1/files/{name}", self._file)

    # -- what tests look at ------------------------------------------------------

    def posts(self) -> list[str]:
        return [s.path for s in self.seen if s.method == "POST"]

    def status_checks(self, vid: str | None = None) -> int:
        return sum(1 for s in self.seen if s.method == "GET" and s.path.startswith("/v1/videos/")
                   and not s.path.endswith("/content") and (vid is None or s.path.endswith("/" + vid)))

    # -- submits -----------------------------------------------------------------

    async def _submit(self, request: web.Request) -> tuple[web.Response | None, dict[str, Any]]:
        body = await self.record(request, method=request.method)
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return json_response(401, _error("Incorrect API key provided.", "invalid_request_error",
                                             code="invalid_api_key")), {}
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed, {}
        ctype = request.headers.get("content-type", "")
        fields = parse_form(ctype, body) if ctype.startswith("multipart/") else orjson.loads(body)
        self.forms.append(fields)
        return None, fields

    async def _create(self, request: web.Request) -> web.Response:
        refused, f = await self._submit(request)
        if refused is not None:
            return refused
        if "prompt" not in f:
            return json_response(400, _error("Missing required parameter: 'prompt'.", param="prompt",
                                             code="missing_required_parameter"))
        if "seconds" in f and f["seconds"] not in self.behaviour.lengths:
            return _bad_seconds(f["seconds"], self.behaviour.lengths)
        return self._new(f["prompt"], f.get("model", "sora-2"), f.get("seconds", "4"), f.get("size", "720x1280"))

    async def _remix(self, request: web.Request) -> web.Response:
        refused, f = await self._submit(request)
        if refused is not None:
            return refused
        source = self.jobs.get(request.match_info["id"])
        if source is None:
            return _not_found(request.match_info["id"])
        return self._new(f["prompt"], source["model"], source["seconds"], source["size"],
                         remixed_from_video_id=source["id"])

    async def _edit(self, request: web.Request) -> web.Response:
        refused, f = await self._submit(request)
        if refused is not None:
            return refused
        source = self.jobs.get(f.get("video[id]", ""))
        if source is None:
            return _not_found(f.get("video[id]", ""))
        return self._new(f["prompt"], source["model"], source["seconds"], source["size"])

    async def _extend(self, request: web.Request) -> web.Response:
        refused, f = await self._submit(request)
        if refused is not None:
            return refused
        source = self.jobs.get(f.get("video[id]", ""))
        if source is None:
            return _not_found(f.get("video[id]", ""))
        if f.get("seconds") not in self.behaviour.lengths:
            return _bad_seconds(f.get("seconds"), self.behaviour.lengths)
        total = str(int(source["seconds"]) + int(f["seconds"]))     # the stitched duration, as OpenAI reports it
        return self._new(f["prompt"], source["model"], total, source["size"], extends=source["id"])

    def _new(self, prompt: str, model: str, seconds: str, size: str, **extra: Any) -> web.Response:
        vid = f"video_{next(self._ids):04d}{'0' * 44}"
        job = {**self.template, "id": vid, "prompt": prompt, "model": model, "seconds": seconds, "size": size,
               "polls": 0, **extra}
        if "extends" in extra:
            self.extended.append((extra["extends"], vid))
        self.jobs[vid] = job
        return json_response(200, orjson.dumps(_public(job)))

    # -- status, files, delete ---------------------------------------------------

    async def _status(self, request: web.Request) -> web.Response:
        await self.record(request, method="GET")
        b = self.behaviour
        if self._poll_failures < b.poll_failures:
            self._poll_failures += 1
            return json_response(500, recorded("error_500.json"))
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _not_found(request.match_info["id"])
        job["polls"] += 1
        n = job["polls"]
        error = b.extension_error if "extends" in job and b.extension_error is not None else b.job_error
        if n <= b.queued_polls:
            job.update(status="queued", progress=0)
        elif error is not None:
            job.update(status="failed", error=error)
        elif n <= b.queued_polls + b.progress_polls:
            job.update(status="in_progress", progress=int(100 * (n - b.queued_polls) / (b.progress_polls + 1)))
        else:
            job.update(status="completed", progress=100, completed_at=job["created_at"] + 60,
                       expires_at=job["created_at"] + 3660)
        return json_response(200, orjson.dumps(_public(job)))

    async def _content(self, request: web.Request) -> web.StreamResponse:
        await self.record(request, method="GET")
        vid = request.match_info["id"]
        job = self.jobs.get(vid)
        if job is None:
            return _not_found(vid)
        if job.get("status") != "completed":
            return json_response(400, _error(f"Video '{vid}' is not ready yet: its status is "
                                             f"{job.get('status')}.", param="video_id"))
        variant = request.query.get("variant", "video")
        rendered = sample()
        if variant == "video":
            if self.behaviour.redirect_download:
                raise web.HTTPFound(f"/v1/files/{vid}.mp4")
            return web.Response(body=self.behaviour.video_bytes or rendered.mp4, content_type="video/mp4")
        if not self.behaviour.previews:
            return _not_found(vid, f"No {variant} for video '{vid}'.")
        if variant == "thumbnail":
            return web.Response(body=rendered.thumbnail_webp, content_type="image/webp")
        if variant == "spritesheet":
            return web.Response(body=rendered.spritesheet_jpeg, content_type="image/jpeg")
        return json_response(400, _error(f"Invalid value: '{variant}'.", param="variant", code="invalid_value"))

    async def _file(self, request: web.Request) -> web.Response:
        await self.record(request, method="GET")
        return web.Response(body=sample().mp4, content_type="video/mp4")

    async def _delete(self, request: web.Request) -> web.Response:
        await self.record(request, method="DELETE")
        vid = request.match_info["id"]
        if self.jobs.pop(vid, None) is None:
            return _not_found(vid)
        self.deleted.append(vid)
        return json_response(200, orjson.dumps({"id": vid, "object": "video.deleted", "deleted": True}))


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in ("polls", "extends")}


def _bad_seconds(seconds: Any, lengths: tuple[str, ...]) -> web.Response:
    return json_response(400, _error(f"Invalid value: '{seconds}'. Supported values are: "
                                     f"{', '.join(repr(s) for s in lengths)}.", param="seconds",
                                     code="invalid_value"))


def _error(message: str, type: str = "invalid_request_error", param: str | None = None,
           code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


def _not_found(vid: str, message: str | None = None) -> web.Response:
    return json_response(404, _error(message or f"Video with id '{vid}' not found.", param="video_id"))
