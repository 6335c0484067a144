"""What the fake hosted video upstreams (runway, fal, replicate) share: jobs
that go queued -> running (progress rising over `running_polls` checks) ->
done or failed, a real small MP4 served by the same fake, and knobs for the
ways such upstreams fail. Submit failures use `fail(status, body, headers=...)`
as every fake does; the other knobs are fields of `VideoBehaviour`."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.server import Behaviour, FakeServer, Seen, json_response
from tests.upstreams.video_sample import sample


def sample_mp4() -> bytes:
    """One real, small MP4 (160x90, 1 s), rendered once per test session."""
    return sample().mp4


@dataclass
class VideoBehaviour(Behaviour):
    queued_polls: int = 1                 # status checks answered "queued" first
    running_polls: int = 3                # then "running", progress rising each time
    job_fails: bool = False               # then the provider's failure shape instead of the video
    failure: str = ""                     # which recorded failure (the fake's default when empty)
    poll_errors: list[int] = field(default_factory=list)   # statuses for the next status checks, one each


@dataclass
class Job:
    id: str
    input: dict[str, Any]
    path: str = ""
    polls: int = 0
    cancelled: bool = False


class HostedVideoFake(FakeServer):
    knobs = VideoBehaviour
    behaviour: VideoBehaviour
    provider = ""           # tests/data/<provider>
    submit_paths: tuple[str, ...] = ()

    def __init__(self, loop: Loop, prefix: str = "", key: str = "test-key") -> None:
        self.key = key
        self.jobs: dict[str, Job] = {}
        self.mp4 = sample_mp4()
        self.images: dict[str, bytes] = {}      # images made, by name, served at /images/{name}
        super().__init__(loop, prefix)

    # -- helpers for the subclasses -----------------------------------------

    def recorded(self, name: str) -> bytes:
        return (DATA / self.provider / name).read_bytes()

    def recorded_json(self, name: str) -> dict[str, Any]:
        return orjson.loads(self.recorded(name))

    def new_job(self, body: bytes, path: str) -> Job:
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            data = {}
        job = Job(uuid.uuid4().hex, data if isinstance(data, dict) else {}, path)
        self.jobs[job.id] = job
        return job

    def file_url(self, job: Job) -> str:
        return f"{self.base}/files/{job.id}.mp4"

    def phase(self, job: Job) -> tuple[str, float | None]:
        """Advance `job` by one status check: ("queued" | "running" | "done" |
        "failed" | "cancelled", progress 0..1 while running)."""
        b = self.behaviour
        job.polls += 1
        if job.cancelled:
            return "cancelled", None
        if job.polls <= b.queued_polls:
            return "queued", None
        running = job.polls - b.queued_polls
        if running <= b.running_polls:
            return "running", running / (b.running_polls + 1)
        return ("failed" if b.job_fails else "done"), None

    def poll_error(self, body: bytes) -> web.Response | None:
        """A transient failure of one status check, if `poll_errors` asks for one."""
        if self.behaviour.poll_errors:
            return json_response(self.behaviour.poll_errors.pop(0), body)
        return None

    def is_submit(self, seen: Seen) -> bool:
        return seen.method == "POST" and seen.path in self.submit_paths

    @property
    def submits(self) -> list[Seen]:
        """The job submissions received (a resumed job must add none)."""
        return [s for s in self.seen if self.is_submit(s)]

    def add_file_route(self, app: web.Application) -> None:
        """The provider's file URLs: the video at /files/{name}, images made at /images/{name}."""
        app.router.add_get("/files/{name}", self._file)
        app.router.add_get("/images/{name}", self._image)

    async def _image(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        image = self.images.get(request.match_info["name"])
        if image is None:
            return web.Response(status=404)
        return web.Response(body=image, content_type="image/png")

    async def _file(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        return web.Response(body=self.mp4, content_type="video/mp4")
