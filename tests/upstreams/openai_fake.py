"""A fake OpenAI API on loopback: recorded bodies from tests/data/openai, and
knobs to make it fail the ways real upstreams do."""
from __future__ import annotations

import orjson
from aiohttp import web

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
        super().__init__(loop, "/v1")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)

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
