"""A fake fal queue (queue.fal.run) on loopback: requests that go IN_QUEUE
(queue_position) -> IN_PROGRESS (a progress bar in the logs) -> COMPLETED,
with the output (or the failure) at the response URL as fal does; recorded
bodies from tests/data/fal. `url` is the queue's base (models go after it).
Image models (FLUX, Kontext, Imagen, nano-banana) finish with `images`: real
PNGs at the image_size or aspect_ratio asked for, served by the fake."""
from __future__ import annotations

import orjson
from aiohttp import web

from tests.harness import Loop
from tests.upstreams.hosted_video_fake import HostedVideoFake, Job
from tests.upstreams.image_sample import png, ratio_size
from tests.upstreams.server import Seen, json_response

_FAILURE_STATUS = {"result_422_content_policy.json": 422, "result_504_timeout.json": 504}
_IMAGE_APPS = ("flux", "imagen", "nano-banana")
_PRESETS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
            "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}


class FakeFal(HostedVideoFake):
    provider = "fal"

    def __init__(self, loop: Loop, key: str = "fal-key-id:fal-key-secret") -> None:
        self.image_result: bytes | None = None     # set: the response URL's answer for image models, as it is
        super().__init__(loop, "", key)

    def is_submit(self, seen: Seen) -> bool:
        return seen.method == "POST"

    def routes(self, app: web.Application) -> None:
        self.add_file_route(app)
        app.router.add_get("/{app:.+}/requests/{id}/status", self._status)
        app.router.add_put("/{app:.+}/requests/{id}/cancel", self._cancel)
        app.router.add_get("/{app:.+}/requests/{id}", self._result)
        app.router.add_post("/{model:.+}", self._submit)

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("authorization") != f"Key {self.key}":
            return json_response(401, self.recorded("error_401.json"))
        return None

    def _urls(self, job) -> dict[str, str]:
        # fal's status and response URLs name the app without the model's subpath
        app = "/".join(job.path.strip("/").split("/")[:2])
        base = f"{self.base}/{app}/requests/{job.id}"
        return {"request_id": job.id, "response_url": base, "status_url": base + "/status",
                "cancel_url": base + "/cancel"}

    async def _submit(self, request: web.Request) -> web.Response:
        body = await self.record(request, method=request.method, model=request.match_info["model"])
        refused = self._refused(request) or await self.fail_or_wait()
        if refused is not None:
            return refused
        job = self.new_job(body, request.path)
        return json_response(200, orjson.dumps({"status": "IN_QUEUE", **self._urls(job), "queue_position": 0}))

    def _job(self, request: web.Request):
        return self.jobs.get(request.match_info["id"])

    async def _status(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request) or self.poll_error(self.recorded("error_500.json"))
        if refused is not None:
            return refused
        job = self._job(request)
        if job is None:
            return json_response(404, b'{"detail": "Request not found"}')
        phase, progress = self.phase(job)
        if phase == "queued":
            doc = self.recorded_json("status_in_queue.json")
        elif phase == "running":
            doc = self.recorded_json("status_in_progress.json")
            doc["logs"][-1]["message"] = f" {round(progress * 100)}%|####      | {round(progress * 40)}/40"
        else:   # done, failed and cancelled requests are all COMPLETED here; the result tells
            doc = self.recorded_json("status_completed.json")
        doc.update(self._urls(job))
        return json_response(200 if phase not in ("queued", "running") else 202, orjson.dumps(doc))

    async def _result(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request)
        if refused is not None:
            return refused
        job = self._job(request)
        if job is None:
            return json_response(404, b'{"detail": "Request not found"}')
        if job.cancelled:
            return json_response(400, b'{"detail": "Request was cancelled", "error_type": "client_cancelled"}')
        if self.behaviour.job_fails:
            name = self.behaviour.failure or "result_422_content_policy.json"
            return json_response(_FAILURE_STATUS.get(name, 500), self.recorded(name))
        if any(app in job.path for app in _IMAGE_APPS):
            return json_response(200, self.image_result or self._images(job))
        doc = self.recorded_json("result_video.json")
        doc["video"]["url"] = self.file_url(job)
        return json_response(200, orjson.dumps(doc))

    def _images(self, job: Job) -> bytes:
        """`num_images` PNGs at the asked image_size (a preset or {width, height}) or aspect_ratio."""
        size = job.input.get("image_size")
        if isinstance(size, dict):
            w, h = size["width"], size["height"]
        elif isinstance(size, str):
            w, h = (side // 8 for side in _PRESETS[size])
        else:
            w, h = ratio_size(job.input.get("aspect_ratio"))
        out = []
        for i in range(job.input.get("num_images") or 1):
            name = f"{job.id}-{i}.png"
            self.images[name] = png(w, h, name)
            out.append({"url": f"{self.base}/images/{name}", "content_type": "image/png", "width": w, "height": h})
        return orjson.dumps({"images": out, "seed": 42, "has_nsfw_concepts": [False] * len(out),
                             "prompt": job.input.get("prompt")})

    async def _cancel(self, request: web.Request) -> web.Response:
        await self.record(request, method=request.method)
        refused = self._refused(request)
        if refused is not None:
            return refused
        job = self._job(request)
        if job is None:
            return json_response(404, b'{"detail": "Request not found"}')
        job.cancelled = True
        return json_response(202, self.recorded("cancel_requested.json"))
