"""A fake Anthropic Messages API on loopback: recorded answers from
tests/data/anthropic, the checks Anthropic makes on a request (key, version,
max_tokens, alternating turns, every tool_use answered), and knobs to fail
the ways Anthropic does (429, 529 overloaded, an error event inside a stream)."""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.batch_runs import BatchKnobs, FakeBatch, look, new_id
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
        self.batch = BatchKnobs()      # how Message Batches end (tests/upstreams/batch_runs.py)
        self.batches: dict[str, FakeBatch] = {}
        super().__init__(loop, "/v1")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_post("/v1/messages/batches", self._batch_create)
        app.router.add_get("/v1/messages/batches/{batch_id}", self._batch_get)
        app.router.add_get("/v1/messages/batches/{batch_id}/results", self._batch_results)
        app.router.add_post("/v1/messages/batches/{batch_id}/cancel", self._batch_cancel)

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
            return web.Response(body=self.message_answer(doc), content_type="application/json")
        stream = b.stream_body or recorded("stream_tool_use.sse" if tool_turn else "stream_text.sse")
        return await self.stream(request, sse_events(stream))

    def message_answer(self, doc: dict[str, Any]) -> bytes:
        """The whole (not streamed) message for a request `check` passed: what /messages and a batch answer."""
        tool_turn = bool(doc.get("tools")) and not _answers_tools(doc["messages"][-1])
        return recorded("message_tool_use.json" if tool_turn else "message.json")

    # -- Message Batches -------------------------------------------------------------

    async def _batch_request(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        """The request noted and its credentials checked; an answer in place of the real one where the
        key is wrong or the knobs ask for one."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is None and request.headers.get("x-api-key") != self.api_key:
            failed = json_response(401, recorded("error_401.json"))
        if failed is None and not request.headers.get("anthropic-version"):
            failed = _invalid("anthropic-version: header is required")
        if failed is None and self.batch.answer is not None:
            failed = web.Response(body=self.batch.answer, content_type="application/json")
        return body, failed

    async def _batch_create(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._batch_request(request)
        if failed is not None:
            return failed
        doc = orjson.loads(body)
        requests = doc.get("requests")
        if not isinstance(requests, list) or not requests:
            return _invalid("requests: at least one request is required")
        ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
        for i, custom_id in enumerate(ids):
            if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
                return _invalid(f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if not isinstance(requests[i].get("params"), dict):
                return _invalid(f"requests.{i}.params: Field required")
        if len(set(ids)) != len(ids):
            return _invalid("requests: custom_id values must be unique")
        batch = FakeBatch(new_id("msgbatch_"), [(r["custom_id"], r["params"]) for r in requests])
        self.batches[batch.id] = batch
        return _json(self._batch_object(batch))

    async def _batch(self, request: web.Request) -> FakeBatch | web.StreamResponse:
        """The batch the path names, once the request passed `_batch_request`; else the answer to give."""
        _, failed = await self._batch_request(request)
        if failed is not None:
            return failed
        return self.batches.get(request.match_info["batch_id"]) or _not_found()

    async def _batch_get(self, request: web.Request) -> web.StreamResponse:
        batch = await self._batch(request)
        if not isinstance(batch, FakeBatch):
            return batch
        look(batch, self.batch, self._run)
        return _json(self._batch_object(batch))

    def _run(self, custom_id: str, params: dict[str, Any]) -> tuple[int, Any]:
        problem = check(params)
        if problem:
            return 400, {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
        return 200, orjson.loads(self.message_answer(params))

    async def _batch_cancel(self, request: web.Request) -> web.StreamResponse:
        batch = await self._batch(request)
        if not isinstance(batch, FakeBatch):
            return batch
        if batch.ended is not None:
            return _invalid(f"Batch {batch.id} has ended and cannot be canceled.")
        batch.cancel_asked = batch.cancel_asked or time.time()
        return _json(self._batch_object(batch))

    async def _batch_results(self, request: web.Request) -> web.StreamResponse:
        batch = await self._batch(request)
        if not isinstance(batch, FakeBatch):
            return batch
        if batch.ended is None:
            return _invalid(f"Batch {batch.id} is still in_progress; results are available once it has ended.")
        lines = []
        for custom_id, _ in batch.requests:
            if custom_id in batch.answers:
                status, body = batch.answers[custom_id]
                if status == 200:
                    result: dict[str, Any] = {"type": "succeeded", "message": body}
                else:
                    error = body or orjson.loads(_error_file(status))
                    result = {"type": "errored", "error": error}
            elif self.batch.report_unrun:
                result = {"type": "canceled" if batch.ended == "cancelled" else "expired"}
            else:
                continue
            lines.append(orjson.dumps({"custom_id": custom_id, "result": result}))
        return web.Response(body=b"".join(line + b"\n" for line in lines), content_type="application/binary")

    def _batch_object(self, batch: FakeBatch) -> dict[str, Any]:
        ended = batch.ended is not None
        counts = {"processing": 0 if ended else len(batch.requests), "succeeded": 0, "errored": 0,
                  "canceled": 0, "expired": 0}
        for custom_id, _ in batch.requests:
            if custom_id in batch.answers:
                counts["succeeded" if batch.answers[custom_id][0] == 200 else "errored"] += 1
            elif ended:
                counts["canceled" if batch.ended == "cancelled" else "expired"] += 1
        base = self.batch.results_base or self.url
        return {"id": batch.id, "type": "message_batch",
                "processing_status": "ended" if ended else "canceling" if batch.cancel_asked else "in_progress",
                "request_counts": counts, "ended_at": _time(batch.ended_at), "created_at": _time(batch.created),
                "expires_at": _time(batch.created + 86400), "archived_at": None,
                "cancel_initiated_at": _time(batch.cancel_asked),
                "results_url": f"{base}/messages/batches/{batch.id}/results" if ended else None}


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


_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ERROR_FILES = {400: "error_400_invalid.json", 401: "error_401.json", 403: "error_403.json", 404: "error_404.json",
                413: "error_413.json", 429: "error_429.json", 500: "error_500.json", 529: "error_529.json"}


def _error_file(status: int) -> bytes:
    return recorded(_ERROR_FILES.get(status, "error_500.json"))


def _time(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _json(doc: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _not_found() -> web.Response:
    return json_response(404, orjson.dumps({"type": "error", "error": {"type": "not_found_error",
                                                                       "message": "Message batch not found"}}))


def _invalid(message: str) -> web.Response:
    return json_response(400, orjson.dumps({"type": "error",
                                            "error": {"type": "invalid_request_error", "message": message}}))
