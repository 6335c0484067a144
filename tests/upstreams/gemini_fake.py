"""A fake Gemini API (Generative Language, v1beta) on loopback: recorded bodies
from tests/data/gemini, the key checked as Gemini checks it, and knobs to fail
the ways the real one does."""
from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.server import FakeServer, json_response

RECORDED = DATA / "gemini"
_EVENT = re.compile(rb".+?(?:\r\n\r\n|\n\n)", re.S)


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


class FakeGemini(FakeServer):
    def __init__(self, loop: Loop, name: str = "gemini", key: str = "gm-test-key") -> None:
        self.name = name
        self.key = key
        self.chat_body = recorded("generate_text.json")
        self.stream_body = recorded("stream_text.sse")
        super().__init__(loop, "/v1beta")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._call)

    async def _call(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = await self.record(request, model=model, method=method)
        if request.headers.get("x-goog-api-key") != self.key:
            return json_response(400, recorded("error_400_api_key_invalid.json"))
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if method == "generateContent":
            return json_response(200, self.chat_body)
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self.stream(request, _EVENT.findall(self.stream_body))
        if method == "countTokens":     # by size: Google's tokenizer stands behind the real one
            request = orjson.loads(body).get("generateContentRequest") or {}
            return json_response(200, orjson.dumps({"totalTokens": len(orjson.dumps(request.get("contents"))) // 4}))
        if method in ("embedContent", "batchEmbedContents"):
            return json_response(200, _embeddings(orjson.loads(body), method))
        return json_response(404, b'{"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}')


def _embeddings(request: dict[str, Any], method: str) -> bytes:
    """One vector per request, cut to `outputDimensionality` as Gemini does."""
    values = orjson.loads(recorded("embed_content.json"))["embedding"]["values"]

    def one(req: dict[str, Any], i: int) -> dict[str, Any]:
        vector = [round(v + i / 100, 9) for v in values]
        return {"values": vector[: req.get("outputDimensionality") or len(vector)]}

    if method == "embedContent":
        return orjson.dumps({"embedding": one(request, 0)})
    return orjson.dumps({"embeddings": [one(r, i) for i, r in enumerate(request["requests"])]})
