"""uvicorn's httptools protocol with a deadline for reading each request.

uvicorn bounds the silence between requests on a kept-alive connection, but
not the time a client takes to send a request's head and body: one that
declares 10 bytes and sends 2, or trickles its headers, would hold its
connection (and the gateway's memory for it) for as long as it likes. Here a
request must arrive whole within `server.read_timeout_s` of its first byte
(of the connection, for the first one); past that, a request whose head is
still incomplete gets a 408 and the connection closes, and one whose body is
incomplete has its connection closed (its handler sees the client leave).

One timer a request, armed when a request begins and cancelled when it has
been read, so the request path pays a call_later and a cancel (~1 µs).
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = orjson.dumps({"error": {
    "message": "The request was not received in time; send it whole and promptly.",
    "type": "invalid_request_error", "param": None, "code": "request_timeout"}})
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
              b"content-length: " + str(len(_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _BODY)


class DeadlineProtocol(HttpToolsProtocol):
    """Set `read_timeout_s` before serving (`gateway serve` and each worker process do, from the config)."""
    read_timeout_s = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _too_slow(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:   # no handler has this request yet
            self.transport.write(_TIMED_OUT)
        self.transport.close()      # a handler reading the body sees the client leave


def configure(server: Any) -> type[DeadlineProtocol]:
    """The protocol class for a config's `server` section."""
    DeadlineProtocol.read_timeout_s = server.read_timeout_s
    return DeadlineProtocol
