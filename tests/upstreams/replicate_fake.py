"""A fake Replicate API (api.replicate.com/v1) on loopback: predictions that
go starting -> processing (a progress bar in the logs) -> succeeded with an
MP4 this fake serves, or failed; recorded bodies from tests/data/replicate.
Image models (FLUX, Imagen, nano-banana) finish with a list of real PNGs at the
aspect_ratio (or width and height) asked for; with `Prefer: wait` they answer
the create call finished, as Replicate's sync mode does."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.harness import Loop
from tests.upstreams.hosted_video_fake import HostedVideoFake, Job
from tests.upstreams.image_sample import png, ratio_size
from tests.upstreams.server import Seen, json_response


class FakeReplicate(HostedVideoFake):
    provider = "replicate"

    def __init__(self, loop: Loop, key: str = "r8_test") -> None:
        self.sync_images = True                  # image predictions made with Prefer: wait answer finished
        self.image_output: Any = _MADE           # set: a finished image prediction's `output`, as it is
        super().__init__(loop, "/v1", key)

    def is_submit(self, seen: Seen) -> bool:
        return seen.method == "POST" and seen.path.endswith("/predictions")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/models/{owner}/{name}/predictions", self._submit)
        app.router.add_post("/v1/predictions", self._submit)
        app.router.add_get("/v1/predictions/{id}", self._prediction)
        app.router.add_post("/v1/predictions/{id}/cancel", self._cancel)
        self.add_file_route(app)

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return json_response(401, self.recorded("error_401.json"))
        return None

    def _body(self, job: Job, name: str) -> dict:
        doc = self.recorded_json(name)
        doc["id"] = job.id
        doc["input"] = job.input.get("input", {})
        doc["urls"] = {"get": f"{self.url}/predictions/{job.id}", "cancel": f"{self.url}/predictions/{job.id}/cancel"}
        return doc

    async def _submit(self, request: web.Request) -> web.Response:
        body = await self.record(request, method=request.method)
        refused = self._refused(request) or await self.fail_or_wait()
        if refused is not None:
            return refused
        job = self.new_job(body, request.path)
        if _is_image(job) and "wait" in request.headers.get("prefer", "") and self.sync_images:
            return json_response(201, orjson.dumps(self._images(job)))
        return json_response(201, orjson.dumps(self._body(job, "prediction_starting.json")))

    async def _prediction(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request) or self.poll_error(self.recorded("error_500.json"))
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return json_response(404, self.recorded("error_404.json"))
        phase, progress = self.phase(job)
        name = {"queued": "prediction_starting.json", "running": "prediction_processing.json",
                "done": "prediction_succeeded.json", "cancelled": "prediction_canceled.json",
                "failed": self.behaviour.failure or "prediction_failed_sensitive.json"}[phase]
        doc = self._body(job, name)
        if phase == "running":
            pct = round(progress * 100)
            doc["logs"] = f"Using seed: 1830\n{pct:3d}%|#####     | {pct // 2}/50 [00:10<00:10,  2.00it/s]"
        if phase == "done" and _is_image(job):
            doc = self._images(job)
        elif phase == "done":
            doc["output"] = self.file_url(job)
        return json_response(200, orjson.dumps(doc))

    def _images(self, job: Job) -> dict:
        """The prediction finished: `num_outputs` PNGs at the asked aspect_ratio or width and height."""
        doc = self._body(job, "prediction_succeeded.json")
        inp = job.input.get("input", {})
        w, h = (inp["width"], inp["height"]) if "width" in inp else ratio_size(inp.get("aspect_ratio"))
        urls = []
        for i in range(inp.get("num_outputs") or 1):
            name = f"{job.id}-{i}.png"
            self.images[name] = png(w, h, name)
            urls.append(f"{self.base}/images/{name}")
        doc["output"] = urls if self.image_output is _MADE else self.image_output
        return doc

    async def _cancel(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request)
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return json_response(404, self.recorded("error_404.json"))
        job.cancelled = True
        return json_response(200, orjson.dumps(self._body(job, "prediction_canceled.json")))


_MADE = object()
_IMAGE_MODELS = ("flux", "imagen", "nano-banana")


def _is_image(job: Job) -> bool:
    return any(m in job.path for m in _IMAGE_MODELS)
