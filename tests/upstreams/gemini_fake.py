"""A fake Gemini API (Generative Language, v1beta) on loopback: recorded bodies
from tests/data/gemini, the key checked as Gemini checks it, and knobs to fail
the ways the real one does."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop, free_port

RECORDED = DATA / "gemini"
_EVENT = re.compile(rb".+?(?:\r\n\r\n|\n\n)", re.S)


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass
class Seen:
    model: str
    method: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Behaviour:
    status: int = 200
    error_body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    stream_cut_after: int | None = None     # events sent before the connection drops
    drop_before_body: bool = False
    chunk_delay_s: float = 0.0              # between stream events


class FakeGemini:
    def __init__(self, loop: Loop, name: str = "gemini", key: str = "gm-test-key") -> None:
        self.name = name
        self.key = key
        self.loop = loop
        self.seen: list[Seen] = []
        self.behaviour = Behaviour()
        self.chat_body = recorded("generate_text.json")
        self.stream_body = recorded("stream_text.sse")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1beta"
        self._runner: web.AppRunner | None = None
        loop.run(self._start())

    def fail(self, status: int, body: bytes | str, **kw: Any) -> None:
        self.behaviour = Behaviour(status=status, error_body=body.encode() if isinstance(body, str) else body, **kw)

    def ok(self, **kw: Any) -> None:
        self.behaviour = Behaviour(**kw)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1beta/models/{target}", self._call)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def close(self) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())

    async def _call(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = await request.read()
        self.seen.append(Seen(model, method, request.query_string, dict(request.headers), body))
        if request.headers.get("x-goog-api-key") != self.key:
            return _json(400, recorded("error_400_api_key_invalid.json"))
        b = self.behaviour
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status != 200:
            return _json(b.status, b.error_body, b.headers)
        if method == "generateContent":
            return _json(200, self.chat_body)
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self._stream(request)
        if method in ("embedContent", "batchEmbedContents"):
            return _json(200, _embeddings(orjson.loads(body), method))
        return _json(404, b'{"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}')

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        b = self.behaviour
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if b.drop_before_body:
            request.transport.close()
            return resp
        for i, event in enumerate(_EVENT.findall(self.stream_body)):
            if b.stream_cut_after is not None and i >= b.stream_cut_after:
                request.transport.close()
                return resp
            if b.chunk_delay_s and i:
                await asyncio.sleep(b.chunk_delay_s)
            await resp.write(event)
        await resp.write_eof()
        return resp


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, headers=headers or {}, content_type="application/json")


def _embeddings(request: dict[str, Any], method: str) -> bytes:
    """One vector per request, cut to `outputDimensionality` as Gemini does."""
    values = orjson.loads(recorded("embed_content.json"))["embedding"]["values"]

    def one(req: dict[str, Any], i: int) -> dict[str, Any]:
        vector = [round(v + i / 100, 9) for v in values]
        return {"values": vector[: req.get("outputDimensionality") or len(vector)]}

    if method == "embedContent":
        return orjson.dumps({"embedding": one(request, 0)})
    return orjson.dumps({"embeddings": [one(r, i) for i, r in enumerate(request["requests"])]})
