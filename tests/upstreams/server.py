"""What every fake upstream shares: a real aiohttp server on a free loopback
port, run on the test `Loop`; each request it receives, recorded; and knobs to
fail the ways upstreams do (an error status, a slow answer, a stream cut
short). A fake for one provider subclasses `FakeServer` and adds only that
provider's routes and wire format."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web

from tests.harness import Loop, free_port


@dataclass
class Seen:
    """One request as the fake received it."""
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""
    model: str = ""       # where the provider names the model in the path (Gemini, Bedrock)
    method: str = ""      # Gemini's `:generateContent`, `:streamGenerateContent`, ...

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Behaviour:
    status: int = 200
    error_body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0                   # before the answer's headers
    stream_cut_after: int | None = None    # events sent before the connection drops
    drop_before_body: bool = False         # 200 + headers, then the connection drops
    chunk_delay_s: float = 0.0             # between stream events
    stream_in_one_write: bool = False      # a stream's events all written at once (a short answer from a fast server)


class FakeServer:
    """A fake upstream at `base` (scheme, host and port); `url` adds the API's
    path prefix. Set how it answers with `fail(...)` / `ok(...)`."""

    knobs: type[Behaviour] = Behaviour

    def __init__(self, loop: Loop, prefix: str = "") -> None:
        self.loop = loop
        self.seen: list[Seen] = []
        self.streams_abandoned = 0             # streams whose reader went away before the end
        self.behaviour = self.knobs()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + prefix
        self._runner: web.AppRunner | None = None
        loop.run(self._start())

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def fail(self, status: int, body: bytes | str, **kw: Any) -> None:
        self.behaviour = self.knobs(status=status, error_body=body.encode() if isinstance(body, str) else body, **kw)

    def ok(self, **kw: Any) -> None:
        self.behaviour = self.knobs(**kw)

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        # Closing waits this long for answers still being written (a slow or endless one), not aiohttp's 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def close(self) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def record(self, request: web.Request, **fields: Any) -> bytes:
        """Note the request in `seen` (`fields` add to or replace what is noted); its body."""
        body = await request.read()
        self.seen.append(Seen(**{"path": request.path, "headers": dict(request.headers), "body": body,
                                 "query": request.query_string, **fields}))
        return body

    async def fail_or_wait(self) -> web.Response | None:
        """Wait `delay_s`, then the error answer `fail(...)` asked for, if any."""
        b = self.behaviour
        if b.delay_s:
            await asyncio.sleep(b.delay_s)
        if b.status != 200:
            return json_response(b.status, b.error_body, b.headers)
        return None

    async def stream(self, request: web.Request, events: list[bytes],
                     content_type: str = "text/event-stream") -> web.StreamResponse:
        """Send `events` one write each, dropping or pausing as the knobs say."""
        b = self.behaviour
        resp = web.StreamResponse(headers={"content-type": content_type})
        await resp.prepare(request)
        if b.drop_before_body:
            request.transport.close()
            return resp
        if b.stream_in_one_write:
            events = [b"".join(events)]
        try:
            for i, event in enumerate(events):
                if b.stream_cut_after is not None and i >= b.stream_cut_after:
                    request.transport.close()   # the connection drops mid-stream
                    return resp
                if b.chunk_delay_s and i:
                    await asyncio.sleep(b.chunk_delay_s)
                await self.write_event(resp, event)
            await resp.write_eof()
        except ConnectionError:
            self.streams_abandoned += 1
        return resp

    async def write_event(self, resp: web.StreamResponse, event: bytes) -> None:
        await resp.write(event)


def sse_events(body: bytes) -> list[bytes]:
    """A recorded SSE body, one event (with its blank line) per item."""
    return [e + b"\n\n" for e in body.split(b"\n\n") if e.strip()]


def json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, headers=headers or {}, content_type="application/json")
