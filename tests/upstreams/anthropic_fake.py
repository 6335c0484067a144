"""A fake Anthropic Messages API on loopback: recorded answers from
tests/data/anthropic, the checks Anthropic makes on a request (key, version,
max_tokens, alternating turns, every tool_use answered), and knobs to fail
the ways Anthropic does (429, 529 overloaded, an error event inside a stream)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.server import Behaviour, FakeServer, json_response, sse_events

RECORDED = DATA / "anthropic"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


@dataclass
class AnthropicBehaviour(Behaviour):
    stream_body: bytes | None = None      # instead of the recorded stream (e.g. one with an error event)


class FakeAnthropic(FakeServer):
    knobs = AnthropicBehaviour

    def __init__(self, loop: Loop, api_key: str = "sk-ant-test") -> None:
        self.api_key = api_key
        super().__init__(loop, "/v1")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        """A count by the body's size (Anthropic's own tokenizer stands behind the real one)."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if request.headers.get("x-api-key") != self.api_key:
            return json_response(401, recorded("error_401.json"))
        if "max_tokens" in orjson.loads(body):
            return _invalid("max_tokens: Extra inputs are not permitted")
        return json_response(200, orjson.dumps({"input_tokens": len(body) // 3}))

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        b = self.behaviour
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if request.headers.get("x-api-key") != self.api_key:
            return json_response(401, recorded("error_401.json"))
        if not request.headers.get("anthropic-version"):
            return _invalid("anthropic-version: header is required")
        if b.status != 200:
            return json_response(b.status, b.error_body, b.headers)
        doc = orjson.loads(body)
        problem = check(doc)
        if problem:
            return _invalid(problem)
        tool_turn = bool(doc.get("tools")) and not _answers_tools(doc["messages"][-1])
        if not doc.get("stream"):
            answer = recorded("message_tool_use.json" if tool_turn else "message.json")
            return web.Response(body=answer, content_type="application/json")
        stream = b.stream_body or recorded("stream_tool_use.sse" if tool_turn else "stream_text.sse")
        return await self.stream(request, sse_events(stream))


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


def _invalid(message: str) -> web.Response:
    return json_response(400, orjson.dumps({"type": "error",
                                            "error": {"type": "invalid_request_error", "message": message}}))
