"""A fake Runway API (api.dev.runwayml.com/v1) on loopback: tasks that run
through PENDING -> RUNNING (progress 0..1) -> SUCCEEDED with an MP4 this fake
serves, or FAILED with a failure code; recorded bodies from tests/data/runway."""
from __future__ import annotations

import orjson
from aiohttp import web

from tests.harness import Loop
from tests.upstreams.hosted_video_fake import HostedVideoFake
from tests.upstreams.server import json_response


class FakeRunway(HostedVideoFake):
    provider = "runway"
    submit_paths = ("/v1/text_to_video", "/v1/image_to_video")

    def __init__(self, loop: Loop, key: str = "key_test") -> None:
        super().__init__(loop, "/v1", key)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/text_to_video", self._submit)
        app.router.add_post("/v1/image_to_video", self._submit)
        app.router.add_get("/v1/tasks/{id}", self._task)
        app.router.add_delete("/v1/tasks/{id}", self._cancel)
        self.add_file_route(app)

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return json_response(401, self.recorded("error_401.json"))
        if not request.headers.get("x-runway-version"):
            return json_response(400, b'{"error": "The X-Runway-Version header is required."}')
        return None

    async def _submit(self, request: web.Request) -> web.Response:
        body = await self.record(request, method=request.method)
        refused = self._refused(request) or await self.fail_or_wait()
        if refused is not None:
            return refused
        job = self.new_job(body, request.path)
        return json_response(200, orjson.dumps({"id": job.id}))

    async def _task(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request) or self.poll_error(self.recorded("error_500.json"))
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return json_response(404, self.recorded("error_404.json"))
        phase, progress = self.phase(job)
        name = {"queued": "task_pending.json", "running": "task_running.json", "done": "task_succeeded.json",
                "cancelled": "task_cancelled.json",
                "failed": self.behaviour.failure or "task_failed_safety.json"}[phase]
        doc = self.recorded_json(name)
        doc["id"] = job.id
        if phase == "running":
            doc["progress"] = progress
        if phase == "done":
            doc["output"] = [self.file_url(job)]
        return json_response(200, orjson.dumps(doc))

    async def _cancel(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request)
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return json_response(404, self.recorded("error_404.json"))
        job.cancelled = True
        return web.Response(status=204)

