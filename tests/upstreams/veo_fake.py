"""A fake Gemini API for Veo (v1beta `predictLongRunning`) on loopback:
operations that stay pending for a few checks and then finish with a
download URI on the fake itself (which redirects to the file, as Google's
does when the knob says so), the key checked as Gemini checks it, and knobs
to fail the ways the real one does.

Point a provider at it with `base_url: fake.url` (…/v1beta) and `api_key: fake.key`.
"""
from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.server import Behaviour, FakeServer, json_response
from tests.upstreams.video_sample import sample

RECORDED = DATA / "veo"
_NOT_FOUND = b'{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}'


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass
class VeoBehaviour(Behaviour):
    """`fail(status, body)` refuses submits; these shape the operations."""
    pending_polls: int = 3              # operation checks that answer done: false
    op_error: dict | None = None        # the operation ends with this `error` {code, message}
    rai_filtered: bool = False          # the operation ends with its sample filtered (no video)
    inline_video: bool = False          # the sample carries the MP4 inline (encodedVideo) instead of a URI
    poll_failures: int = 0              # the first N operation checks answer 500
    redirect_download: bool = True      # the file URI answers 302 to /download/<id>.mp4, as Google's does
    storage: str | None = None          # redirect there instead (another origin: signed storage, or an attacker)


class FakeVeo(FakeServer):
    knobs = VeoBehaviour

    def __init__(self, loop: Loop, key: str = "veo-test-key") -> None:
        self.key = key
        self.operations: dict[str, dict[str, Any]] = {}   # name -> {"model", "body", "polls", "cancelled"}
        self._ids = itertools.count(1)
        self._poll_failures = 0
        super().__init__(loop, "/v1beta")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._submit)
        app.router.add_get("/v1beta/models/{model}/operations/{op}", self._operation)
        app.router.add_post("/v1beta/models/{model}/operations/{op}", self._cancel)   # {op} = "<id>:cancel"
        app.router.add_get("/v1beta/files/{target}", self._file)
        app.router.add_get("/download/{name}", self._download)

    # -- what tests look at ------------------------------------------------------

    def submits(self) -> list[Any]:
        return [s for s in self.seen if s.method == "predictLongRunning"]

    def operation_checks(self) -> int:
        return sum(1 for s in self.seen if s.method == "GET" and "/operations/" in s.path)

    # -- routes ------------------------------------------------------------------

    def _key_refused(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-goog-api-key") != self.key:
            return json_response(400, (DATA / "gemini" / "error_400_api_key_invalid.json").read_bytes())
        return None

    async def _submit(self, request: web.Request) -> web.Response:
        model, _, method = request.match_info["target"].partition(":")
        body = await self.record(request, model=model, method=method)
        refused = self._key_refused(request)
        if refused is not None:
            return refused
        if method != "predictLongRunning":
            return json_response(404, _NOT_FOUND)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        name = f"models/{model}/operations/op{next(self._ids):04d}"
        self.operations[name] = {"model": model, "body": orjson.loads(body), "polls": 0, "cancelled": False}
        return json_response(200, orjson.dumps({"name": name}))

    async def _operation(self, request: web.Request) -> web.Response:
        await self.record(request, model=request.match_info["model"], method="GET")
        refused = self._key_refused(request)
        if refused is not None:
            return refused
        b = self.behaviour
        if self._poll_failures < b.poll_failures:
            self._poll_failures += 1
            return json_response(500, recorded("error_500.json"))
        name = f"models/{request.match_info['model']}/operations/{request.match_info['op']}"
        op = self.operations.get(name)
        if op is None:
            return json_response(404, _NOT_FOUND)
        op["polls"] += 1
        if op["polls"] <= b.pending_polls:
            return json_response(200, orjson.dumps({"name": name}))
        if b.op_error is not None:
            return json_response(200, orjson.dumps({"name": name, "done": True, "error": b.op_error}))
        if b.rai_filtered:
            done = orjson.loads(recorded("operation_rai_filtered.json"))
            return json_response(200, orjson.dumps({**done, "name": name}))
        file_id = name.rsplit("/", 1)[1]
        video = ({"encodedVideo": base64.b64encode(sample().mp4).decode("ascii"), "encoding": "video/mp4"}
                 if b.inline_video
                 else {"uri": f"{self.url}/files/{file_id}:download?alt=media"})
        done = orjson.loads(recorded("operation_done.json"))
        done["name"] = name
        done["response"]["generateVideoResponse"]["generatedSamples"] = [{"video": video}]
        return json_response(200, orjson.dumps(done))

    async def _cancel(self, request: web.Request) -> web.Response:
        op_id, _, verb = request.match_info["op"].partition(":")
        await self.record(request, model=request.match_info["model"], method=verb)
        refused = self._key_refused(request)
        if refused is not None:
            return refused
        op = self.operations.get(f"models/{request.match_info['model']}/operations/{op_id}")
        if verb != "cancel" or op is None:
            return json_response(404, _NOT_FOUND)
        op["cancelled"] = True
        return json_response(200, b"{}")

    async def _file(self, request: web.Request) -> web.Response:
        file_id, _, verb = request.match_info["target"].partition(":")
        await self.record(request, method=verb)
        refused = self._key_refused(request)
        if refused is not None:
            return refused
        if verb != "download" or request.query.get("alt") != "media":
            return json_response(404, _NOT_FOUND)
        if self.behaviour.redirect_download:
            raise web.HTTPFound(f"{self.behaviour.storage or ''}/download/{file_id}.mp4?signature=fake")
        return web.Response(body=sample().mp4, content_type="video/mp4")

    async def _download(self, request: web.Request) -> web.Response:
        await self.record(request, method="GET")
        return web.Response(body=sample().mp4, content_type="video/mp4")
