"""The little of ASGI the gateway needs: read a bounded body, answer JSON, stream.

The hot path speaks raw ASGI rather than a framework: routing is a dict
lookup and headers are pre-encoded bytes (see docs/performance.md).
"""
from __future__ import annotations

import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from gateway.errors import ApiError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
SomeHeaders = Sequence[tuple[bytes, bytes]]   # what an answer takes: a list, or () for none

JSON = b"application/json"


def new_request_id() -> bytes:
    """Unique, not secret: the time in milliseconds, then 64 random bits from the process's
    own generator (os.urandom is a syscall that measured ~13 us here, on every request).
    Ids that grow with time are appended at the end of the request log's index on them:
    random ones landed all over it, and made each record cost 3x to write and to prune
    (docs/performance.md, Request log)."""
    return b"req_%012x%016x" % (time.time_ns() // 1_000_000, random.getrandbits(64))


def _request_id(headers: dict[bytes, bytes]) -> bytes:
    """The client's own `x-request-id` if it is a sane token, else a new one."""
    given = headers.get(b"x-request-id")
    if given and len(given) <= 128 and all(32 < c < 127 for c in given):
        return given
    return new_request_id()


class Request:
    __slots__ = ("scope", "receive", "_send", "method", "path", "headers", "id", "started", "started_response",
                 "sent_headers", "sent_body")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self._send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self.id = _request_id(self.headers)
        self.started = time.perf_counter()
        self.started_response = False
        # What was answered, for the request log: kept by reference (no copy), read once the request ends.
        self.sent_headers: SomeHeaders = ()
        self.sent_body: bytes | None = None    # a whole answer's body (None for a stream)

    async def body(self, limit: int) -> bytes:
        """The whole body, or 413 once it is past `limit` bytes (before reading it all
        when the client says its length up front)."""
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def pieces(self, limit: int) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, for one too large to hold (an upload), with `body`'s 413 past
        `limit` bytes. (`body` does the same in one piece, spelled out: it is every request's.)"""
        declared = self.headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            piece = message.get("body", b"")
            if piece:
                size += len(piece)
                if size > limit:
                    raise _too_large(limit)
                yield piece
            if not message.get("more_body"):
                return

    def query(self) -> dict[str, str]:
        """The query string's parameters (the last of each name)."""
        raw = self.scope.get("query_string", b"")
        return {k: v[-1] for k, v in parse_qs(raw.decode("latin-1")).items()} if raw else {}

    async def start(self, status: int, headers: Headers, content_type: bytes, length: int) -> None:
        """Begin an answer of `length` bytes, sent on with `send_chunk` and `end_stream`."""
        self.started_response = True
        self.sent_headers = headers
        await self._send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type), (b"content-length", str(length).encode()),
            (b"x-request-id", self.id), *headers]})

    def overhead_ms(self, upstream_s: float) -> bytes:
        return f"{max(0.0, time.perf_counter() - self.started - upstream_s) * 1000:.3f}".encode()

    async def respond(self, status: int, body: bytes, headers: SomeHeaders = (), content_type: bytes = JSON) -> None:
        self.started_response = True
        self.sent_headers, self.sent_body = headers, body
        await self._send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", self.id), *headers]})
        await self._send({"type": "http.response.body", "body": body})

    async def error(self, err: ApiError, headers: SomeHeaders = ()) -> None:
        await self.respond(err.status, err.body(), [*err.headers, *headers])

    async def start_stream(self, headers: SomeHeaders, content_type: bytes = b"text/event-stream") -> None:
        self.started_response = True
        self.sent_headers = headers
        await self._send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", content_type), (b"cache-control", b"no-cache"),
            (b"x-request-id", self.id), *headers]})

    async def send_chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self, last: bytes = b"") -> None:
        """The stream's end, with its `last` chunk when it has one in hand (one message, not two)."""
        await self._send({"type": "http.response.body", "body": last})


class ClientGone(Exception):
    """The client disconnected; there is no one to answer."""


class AnswerCut(Exception):
    """An answer already begun cannot be finished (what it was sending went
    away): the connection is closed, HTTP/1.1's way of saying the body was cut
    short, since a shorter body than its Content-Length cannot end cleanly."""


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"The request body is larger than this gateway accepts ({limit} bytes).",
                    code="request_too_large")
