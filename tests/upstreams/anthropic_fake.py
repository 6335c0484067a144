"""A fake Anthropic Messages API on loopback: recorded answers from
tests/data/anthropic, the checks Anthropic makes on a request (key, version,
max_tokens, alternating turns, every tool_use answered), and knobs to fail
the ways Anthropic does (429, 529 overloaded, an error event inside a stream)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop, free_port
from tests.upstreams.openai_fake import Seen

RECORDED = DATA / "anthropic"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass
class Behaviour:
    status: int = 200
    error_body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    stream_body: bytes | None = None      # instead of the recorded stream (e.g. one with an error event)
    stream_cut_after: int | None = None   # events sent before the connection drops
    chunk_delay_s: float = 0.0


class FakeAnthropic:
    def __init__(self, loop: Loop, api_key: str = "sk-ant-test") -> None:
        self.loop = loop
        self.api_key = api_key
        self.seen: list[Seen] = []
        self.behaviour = Behaviour()
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
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def close(self) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.path, dict(request.headers), body))
        b = self.behaviour
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, recorded("error_401.json"))
        if not request.headers.get("anthropic-version"):
            return _invalid("anthropic-version: header is required")
        if b.status != 200:
            return _error(b.status, b.error_body, b.headers)
        doc = orjson.loads(body)
        problem = check(doc)
        if problem:
            return _invalid(problem)
        tool_turn = bool(doc.get("tools")) and not _answers_tools(doc["messages"][-1])
        if not doc.get("stream"):
            answer = recorded("message_tool_use.json" if tool_turn else "message.json")
            return web.Response(body=answer, content_type="application/json")
        stream = b.stream_body or recorded("stream_tool_use.sse" if tool_turn else "stream_text.sse")
        return await self._stream(request, stream)

    async def _stream(self, request: web.Request, stream: bytes) -> web.StreamResponse:
        b = self.behaviour
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        events = [e + b"\n\n" for e in stream.split(b"\n\n") if e.strip()]
        try:
            for i, event in enumerate(events):
                if b.stream_cut_after is not None and i >= b.stream_cut_after:
                    request.transport.close()
                    return resp
                if b.chunk_delay_s and i:
                    await asyncio.sleep(b.chunk_delay_s)
                await resp.write(event)
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp


def check(doc: dict[str, Any]) -> str | None:
    """What Anthropic would refuse in this request body, if anything."""
    if not isinstance(doc.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending: set[str] = set()
    for i, m in enumerate(messages):
        if m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if i and messages[i - 1]["role"] == m["role"]:
            return "messages: roles must alternate between \"user\" and \"assistant\""
        content = m.get("content")
        if not content:
            return f"messages.{i}: all messages must have non-empty content"
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        results = {c["tool_use_id"] for c in blocks if c.get("type") == "tool_result"}
        if pending - results:
            return f"messages.{i}: tool_use ids were found without tool_result blocks immediately after"
        pending = {c["id"] for c in blocks if c.get("type") == "tool_use"}
        if any(c.get("type") == "text" and not c.get("text") for c in blocks):
            return f"messages.{i}: text content blocks must be non-empty"
    return None


def _answers_tools(turn: dict[str, Any]) -> bool:
    content = turn.get("content")
    return isinstance(content, list) and any(c.get("type") == "tool_result" for c in content)


def _error(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, headers=headers or {}, content_type="application/json")


def _invalid(message: str) -> web.Response:
    return _error(400, orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}}))
