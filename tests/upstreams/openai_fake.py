"""A fake OpenAI API on loopback: recorded bodies from tests/data/openai, and
knobs to make it fail the ways real upstreams do."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop, free_port

RECORDED = DATA / "openai"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass
class Seen:
    path: str
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
    delay_s: float = 0.0            # before the answer's headers
    stream_cut_after: int | None = None   # events sent before the connection is dropped
    drop_before_body: bool = False  # 200 + headers, then the connection drops
    chunk_delay_s: float = 0.0


class FakeOpenAI:
    def __init__(self, loop: Loop, name: str = "fake") -> None:
        self.name = name
        self.loop = loop
        self.seen: list[Seen] = []
        self.streams_abandoned = 0     # streams whose reader went away before the end
        self.behaviour = Behaviour()
        self.chat_body = recorded("chat_completion.json")
        self.stream_body = recorded("chat_stream.sse")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._runner: web.AppRunner | None = None
        loop.run(self._start())

    def fail(self, status: int, body: bytes | str, **kw: Any) -> None:
        self.behaviour = Behaviour(status=status, error_body=body.encode() if isinstance(body, str) else body, **kw)

    def ok(self, **kw: Any) -> None:
        self.behaviour = Behaviour(**kw)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)

    def close(self) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())

    async def _record(self, request: web.Request) -> bytes:
        body = await request.read()
        self.seen.append(Seen(request.path, dict(request.headers), body))
        return body

    async def _fail_or_wait(self, request: web.Request) -> web.StreamResponse | None:
        b = self.behaviour
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status != 200:
            return web.Response(status=b.status, body=b.error_body, headers=b.headers,
                                content_type="application/json")
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        failed = await self._fail_or_wait(request)
        if failed is not None:
            return failed
        if not orjson.loads(body).get("stream"):
            return web.Response(body=self.chat_body, content_type="application/json")
        b = self.behaviour
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if b.drop_before_body:
            request.transport.close()
            return resp
        events = [e + b"\n\n" for e in self.stream_body.split(b"\n\n") if e.strip()]
        try:
            for i, event in enumerate(events):
                if b.stream_cut_after is not None and i >= b.stream_cut_after:
                    request.transport.close()   # the connection drops mid-stream
                    return resp
                if b.chunk_delay_s and i:
                    await asyncio.sleep(b.chunk_delay_s)
                await resp.write(event)
            await resp.write_eof()
        except ConnectionError:
            self.streams_abandoned += 1
        return resp

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        failed = await self._fail_or_wait(request)
        return failed or web.Response(body=recorded("embeddings.json"), content_type="application/json")
