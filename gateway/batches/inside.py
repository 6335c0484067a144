"""Requests the gateway makes to itself, as a key: a batch's lines go through
the app's own dispatch (`App._http`), so each is authenticated, routed,
failed over, limited, priced, cached and logged exactly as the same request
from a client would be. No socket: the ASGI messages are handed over in the
process, and the answer is collected whole."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.exchange import COST_USD
from gateway.spend import NANO

Http = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
                Awaitable[None]]


@dataclass(slots=True)
class Answer:
    status: int = 0
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""

    @property
    def request_id(self) -> bytes:
        return self.headers.get(b"x-request-id", b"")

    @property
    def cost_nano(self) -> int:
        """What the gateway charged for it (its cost header)."""
        try:
            return round(float(self.headers.get(COST_USD, b"0")) * NANO)
        except ValueError:
            return 0

    @property
    def retry_after_s(self) -> float:
        try:
            return float(self.headers.get(b"retry-after", b"1"))
        except ValueError:
            return 1.0


async def call(http: Http, secret: bytes, method: str, path: str, body: bytes = b"",
               request_id: str = "") -> Answer:
    """`method path` with `body`, authenticated by `secret` (Keys.inside), answered whole."""
    headers = [(b"authorization", b"Bearer " + secret), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 0), "server": None}
    sent = False
    answer = Answer()
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:    # asked again once the body is in (a watch for the client leaving): it never leaves
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.lower(): v for k, v in message.get("headers", ())}
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await http(scope, receive, send)
    answer.body = b"".join(chunks)
    return answer
