"""A fake OpenAI API on loopback: recorded bodies from tests/data/openai, and
knobs to make it fail the ways real upstreams do."""
from __future__ import annotations

import base64
import io

import orjson
from aiohttp import web
from PIL import Image

from tests.harness import DATA, Loop
from tests.upstreams.server import FakeServer, sse_events

RECORDED = DATA / "openai"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


class FakeOpenAI(FakeServer):
    def __init__(self, loop: Loop, name: str = "fake") -> None:
        self.name = name
        self.chat_body = recorded("chat_completion.json")
        self.stream_body = recorded("chat_stream.sse")
        self.responses_made: list[str] = []     # ids of the responses it answered (and so knows)
        self.images_answer: bytes | None = None
        super().__init__(loop, "/v1")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._images)

    async def _images(self, request: web.Request) -> web.StreamResponse:
        """The Images API as gpt-image-1 answers: a PNG of the asked size per image, and token usage.
        `images_answer`, when set, is sent instead (a hostile 200)."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if self.images_answer is not None:
            return web.Response(body=self.images_answer, content_type="application/json")
        if request.path.endswith("/edits"):
            from tests.upstreams.openai_video_fake import parse_form
            fields = parse_form(request.headers.get("content-type", ""), body)
        else:
            fields = orjson.loads(body)
        w, _, h = str(fields.get("size") or "1024x1024").partition("x")
        n = int(fields.get("n") or 1)
        return web.Response(content_type="application/json", body=orjson.dumps({
            "created": 1767225600, "background": "opaque", "output_format": "png", "quality": "high",
            "size": f"{w}x{h}", "data": [{"b64_json": base64.b64encode(_png(int(w), int(h), i)).decode()}
                                         for i in range(n)],
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                      "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}}))

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """The Responses API: recorded answers under a new id each time; a
        previous_response_id it did not make is a 400, as OpenAI answers."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        doc = orjson.loads(body)
        previous = doc.get("previous_response_id")
        if previous is not None and previous not in self.responses_made:
            return web.Response(status=400, content_type="application/json", body=orjson.dumps({"error": {
                "message": f"Previous response with id '{previous}' not found.", "type": "invalid_request_error",
                "param": "previous_response_id", "code": "previous_response_not_found"}}))
        made = f"resp_{self.name}{len(self.responses_made):04d}" + "0" * 40
        self.responses_made.append(made)
        if not doc.get("stream"):
            answer = orjson.loads(recorded("response.json"))
            answer.update(id=made, previous_response_id=previous)
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        stream = recorded("response_stream.sse").replace(b"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654",
                                                         made.encode())
        return await self.stream(request, sse_events(stream))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if not orjson.loads(body).get("stream"):
            return web.Response(body=self.chat_body, content_type="application/json")
        return await self.stream(request, sse_events(self.stream_body))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        failed = await self.fail_or_wait()
        return failed or web.Response(body=recorded("embeddings.json"), content_type="application/json")


def _png(width: int, height: int, i: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40 * i % 256, 120, 200)).save(out, format="PNG")
    return out.getvalue()
