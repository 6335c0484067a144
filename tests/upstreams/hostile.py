"""A hostile upstream on loopback: one misbehaviour per path prefix, whatever
provider's wire format the gateway speaks to it, and an "attacker" server that
records everything that reaches it (a redirect's credentials and prompt).

Point a provider at `hostile.at("redirect-302")` as its `base_url`: every call
under that prefix (`/chat/completions`, `/messages`, `/models/x:generateContent`,
a video file) gets that behaviour. `BEHAVIOURS` names them all; later fault
classes add theirs here.
"""
from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from aiohttp import web

from tests.harness import Loop
from tests.upstreams.bedrock_fake import event_frame
from tests.upstreams.server import FakeServer

# A chat answer good enough that a client following the redirect would take it as served.
_LOOKS_SERVED = (b'{"id":"chatcmpl-evil","object":"chat.completion","created":1,"model":"evil","choices":'
                 b'[{"index":0,"message":{"role":"assistant","content":"served by the attacker"},'
                 b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}')
_CHUNK = (b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
          b'[{"index":0,"delta":{"role":"assistant","content":"first words"},"finish_reason":null}]}')
_HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n"
_METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
_EMBEDDING = (b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]}],'
              b'"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}')
# The first streamed words in each wire format, chosen by the request's path.
_FIRST_EVENTS: dict[str, list[bytes]] = {
    "openai": [b"data: " + _CHUNK + b"\n\n"],
    "anthropic": [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","model":"m","content":[],"stop_reason":null,'
        b'"usage":{"input_tokens":1,"output_tokens":0}}}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"first words"}}\n\n'],
    "gemini": [b'data: {"candidates":[{"content":{"parts":[{"text":"first words"}],"role":"model"},'
               b'"index":0}]}\n\n'],
    "bedrock": [event_frame("messageStart", {"role": "assistant"}),
                event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "first words"}})],
}
_NEXT_EVENT = {"openai": _FIRST_EVENTS["openai"][0], "anthropic": _FIRST_EVENTS["anthropic"][2],
               "gemini": _FIRST_EVENTS["gemini"][0], "bedrock": _FIRST_EVENTS["bedrock"][1]}


_BODY = web.RequestKey("body", bytes)


def _wire(request: web.Request) -> str:
    """Which provider's format the call speaks, by its path."""
    path = request.path
    if path.endswith("/converse-stream") or path.endswith("/converse"):
        return "bedrock"
    if path.endswith("/messages"):
        return "anthropic"
    return "gemini" if ":" in path.rpartition("/")[2] else "openai"


def _streams(request: web.Request, body: bytes) -> bool:
    return (request.path.endswith(("/converse-stream", ":streamGenerateContent"))
            or b'"stream":true' in body.replace(b" ", b""))


def _reset(request: web.Request) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP RST, not a FIN."""
    assert request.transport is not None
    sock = request.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.transport.abort()


class Attacker(FakeServer):
    """Any method, any path: recorded in `seen`, answered like a served chat call."""

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(body=_LOOKS_SERVED, content_type="application/json")


class Hostile(FakeServer):
    """Misbehaves as its path's first segment says (see `BEHAVIOURS`)."""

    def __init__(self, loop: Loop, attacker: Attacker, *, huge_bytes: int = 8 * 1024 * 1024,
                 trickle_s: float = 1.0) -> None:
        self.attacker = attacker
        self.huge_bytes = huge_bytes
        self.trickle_s = trickle_s     # between the bytes a `slow-*` body trickles
        self.endless_sent = 0          # bytes the unterminated-event stream got out before it was cut
        self.files: dict[str, bytes] = {}   # served by `slow-file/<name>`, `slow-file-sized/<name>`
        super().__init__(loop)

    def at(self, behaviour: str) -> str:
        assert behaviour in BEHAVIOURS, behaviour
        return f"{self.base}/{behaviour}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{behaviour}/{tail:.*}", self._any)

    async def _any(self, request: web.Request) -> web.StreamResponse:
        request[_BODY] = await self.record(request)
        behaviour = request.match_info["behaviour"]
        tail = request.match_info["tail"]
        if behaviour.startswith("redirect-"):
            return self._redirect(behaviour, tail, request)
        answer = BEHAVIOURS.get(behaviour)
        if answer is None:
            return web.Response(status=404)
        return await answer(self, request)

    def _redirect(self, behaviour: str, tail: str, request: web.Request) -> web.Response:
        query = f"?{request.query_string}" if request.query_string else ""
        kind = behaviour.removeprefix("redirect-")
        if kind.isdigit():
            status, location = int(kind), f"{self.attacker.base}/{tail}{query}"
        elif kind == "chain":      # one hop on this origin, then away
            status, location = 302, f"{self.base}/redirect-307/{tail}{query}"
        elif kind == "relative":   # same origin, path only
            status, location = 301, f"/redirect-308/{tail}{query}"
        elif kind == "metadata":
            status, location = 307, _METADATA
        else:                      # "protocol-relative": //host/path, another origin
            status, location = 302, f"//{self.attacker.base.removeprefix('http://')}/{tail}"
        return web.Response(status=status, headers={"location": location})

    # -- whole answers -----------------------------------------------------------

    async def html(self, request: web.Request) -> web.Response:
        return web.Response(body=_HTML, content_type="text/html")

    async def html_as_json(self, request: web.Request) -> web.Response:
        return web.Response(body=_HTML, content_type="application/json")

    async def invalid_json(self, request: web.Request) -> web.Response:
        return web.Response(body=_LOOKS_SERVED[:90], content_type="application/json")

    async def json_array(self, request: web.Request) -> web.Response:
        return web.Response(body=b"[" + _LOOKS_SERVED + b"]", content_type="application/json")

    async def json_null(self, request: web.Request) -> web.Response:
        return web.Response(body=b"null", content_type="application/json")

    async def json_no_data(self, request: web.Request) -> web.Response:
        """A JSON object with none of the answer's fields (no `data`, no `choices`)."""
        return web.Response(body=b'{"object":"list","model":"m"}', content_type="application/json")

    async def empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="application/json")

    async def huge(self, request: web.Request) -> web.Response:
        """Valid JSON, far too big, with its length declared."""
        pad = self.huge_bytes - len(_LOOKS_SERVED)
        return web.Response(body=_LOOKS_SERVED[:-1] + b',"pad":"' + b"x" * pad + b'"}',
                            content_type="application/json")

    async def huge_chunked(self, request: web.Request) -> web.StreamResponse:
        """The same, chunked: no length to refuse it by up front."""
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(_LOOKS_SERVED[:-1] + b',"pad":"')
        sent = 0
        try:
            while sent < self.huge_bytes:
                await resp.write(b"x" * 65536)
                sent += 65536
            await resp.write(b'"}')
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    async def slow_file(self, request: web.Request) -> web.StreamResponse:
        """`files[name]` in 64 KiB pieces with pauses between, no length declared:
        a reader that stops at the first piece gets a fraction of it."""
        return await self._pieces(request, sized=False)

    async def slow_file_sized(self, request: web.Request) -> web.StreamResponse:
        return await self._pieces(request, sized=True)

    async def _pieces(self, request: web.Request, *, sized: bool) -> web.StreamResponse:
        data = self.files.get(request.match_info["tail"])
        if data is None:
            return web.Response(status=404)
        resp = web.StreamResponse(headers={"content-type": "application/octet-stream"})
        if sized:
            resp.content_length = len(data)
        else:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for i in range(0, len(data), 65536):
                await resp.write(data[i:i + 65536])
                await asyncio.sleep(0.001)
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    # -- streams -------------------------------------------------------------------

    async def _sse(self, request: web.Request, chunks: list[bytes], content_type: str = "text/event-stream",
                   ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": content_type})
        await resp.prepare(request)
        try:
            for chunk in chunks:
                await resp.write(chunk)
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    async def stream_garbage(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, [b"data: " + _HTML.replace(b"\n", b"") + b"\n\n", b"data: [DONE]\n\n"])

    async def stream_html(self, request: web.Request) -> web.StreamResponse:
        """An HTML page labelled as an event stream: no `data:` line at all."""
        return await self._sse(request, [_HTML + b"\n\n" + _HTML])

    async def stream_wrong_type(self, request: web.Request) -> web.StreamResponse:
        """Well-formed events, labelled as HTML."""
        return await self._sse(request, [b"data: " + _LOOKS_SERVED + b"\n\n"], "text/html")

    async def stream_nothing(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, [])

    async def stream_comments(self, request: web.Request) -> web.StreamResponse:
        return await self._sse(request, [b": keep-alive\n\n", b": keep-alive\n\n"])

    async def stream_endless_event(self, request: web.Request) -> web.StreamResponse:
        """One event that never ends: `data: {"x":"xxxx...` until the reader goes."""
        return await self._endless(request, b"")

    async def stream_endless_later(self, request: web.Request) -> web.StreamResponse:
        """A good first event (the client has bytes), then one that never ends."""
        return await self._endless(request, b"data: " + _CHUNK + b"\n\n")

    async def _endless(self, request: web.Request, first: bytes) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        try:
            await resp.write(first + b'data: {"x":"')
            while self.endless_sent < 64 * 1024 * 1024:
                await resp.write(b"x" * 65536)
                self.endless_sent += 65536
                await asyncio.sleep(0)
        except ConnectionError:
            pass
        return resp

    # -- the connection itself ---------------------------------------------------------

    def _answer_type(self, request: web.Request) -> str:
        if not _streams(request, request[_BODY]):
            return "application/json"
        return "application/vnd.amazon.eventstream" if _wire(request) == "bedrock" else "text/event-stream"

    async def reset_early(self, request: web.Request) -> web.StreamResponse:
        """The request read whole, then a reset: not one answer byte."""
        _reset(request)
        return web.Response()     # never sent: the transport is gone

    async def reset_headers(self, request: web.Request) -> web.StreamResponse:
        """200 and the headers (a length promised), then a reset."""
        resp = web.StreamResponse(headers={"content-type": self._answer_type(request)})
        resp.content_length = len(_LOOKS_SERVED)
        await resp.prepare(request)
        await asyncio.sleep(0.05)      # the headers are read before the reset discards them
        _reset(request)
        return resp

    async def reset_midstream(self, request: web.Request) -> web.StreamResponse:
        """The first words in the call's wire format, then a reset."""
        resp = web.StreamResponse(headers={"content-type": self._answer_type(request)})
        await resp.prepare(request)
        for event in _FIRST_EVENTS[_wire(request)]:
            await resp.write(event)
        await asyncio.sleep(0.05)      # relayed to the client before the reset
        _reset(request)
        return resp

    async def echo_400(self, request: web.Request) -> web.Response:
        """An error whose message repeats every header the call carried (credentials too)."""
        return self._echo(request, 400)

    async def echo_500(self, request: web.Request) -> web.Response:
        return self._echo(request, 500)

    def _echo(self, request: web.Request, status: int) -> web.Response:
        said = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
        body = {"error": {"message": f"bad request, you sent {said}", "type": "invalid_request_error"},
                "message": f"you sent {said}"}      # Bedrock's (and others') flat spelling too
        return web.json_response(body, status=status, headers={"x-echo": said[:2000]})

    # -- slow bodies: headers at once, the body a byte per `trickle_s` -----------------

    async def slow_body(self, request: web.Request) -> web.StreamResponse:
        """Whole: a served-looking answer, trickled. Stream: the first words at once, then the next event trickled."""
        if _streams(request, request[_BODY]):
            wire = _wire(request)
            return await self._trickle(request, _FIRST_EVENTS[wire], _NEXT_EVENT[wire] * 50)
        body = _EMBEDDING if request.path.endswith("/embeddings") else _LOOKS_SERVED
        return await self._trickle(request, [], body)

    async def slow_first(self, request: web.Request) -> web.StreamResponse:
        """Headers at once, then even the first event trickles: the client has no byte yet."""
        if _streams(request, request[_BODY]):
            return await self._trickle(request, [], b"".join(_FIRST_EVENTS[_wire(request)]))
        return await self._trickle(request, [], _LOOKS_SERVED)

    async def stall_half(self, request: web.Request) -> web.StreamResponse:
        """Half the answer (or the first words and half an event), then silence with the connection open."""
        if _streams(request, request[_BODY]):
            wire = _wire(request)
            return await self._trickle(request, [*_FIRST_EVENTS[wire], _NEXT_EVENT[wire][:20]], b"", stall=True)
        body = _EMBEDDING if request.path.endswith("/embeddings") else _LOOKS_SERVED
        return await self._trickle(request, [body[:len(body) // 2]], b"", stall=True, length=len(body))

    async def _trickle(self, request: web.Request, at_once: list[bytes], slowly: bytes, *, stall: bool = False,
                       length: int | None = None) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": self._answer_type(request)})
        if not at_once and not stall:
            resp.content_length = len(slowly)
        elif length is not None:
            resp.content_length = length
        await resp.prepare(request)
        try:
            for piece in at_once:
                await resp.write(piece)
            for i in range(len(slowly)):
                await asyncio.sleep(self.trickle_s)
                await resp.write(slowly[i:i + 1])
            for _ in range(1200 if stall else 0):     # silence until the reader gives up (or a minute)
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError
                await asyncio.sleep(0.05)
            await resp.write_eof()
        except ConnectionError:
            self.streams_abandoned += 1     # the reader gave up and closed the connection
        return resp


BEHAVIOURS: dict[str, Any] = {
    **{f"redirect-{k}": None for k in ("301", "302", "303", "307", "308", "chain", "relative", "metadata",
                                       "protocol-relative")},
    "html": Hostile.html,
    "html-as-json": Hostile.html_as_json,
    "invalid-json": Hostile.invalid_json,
    "json-array": Hostile.json_array,
    "json-null": Hostile.json_null,
    "json-no-data": Hostile.json_no_data,
    "empty": Hostile.empty,
    "huge": Hostile.huge,
    "huge-chunked": Hostile.huge_chunked,
    "slow-file": Hostile.slow_file,
    "slow-file-sized": Hostile.slow_file_sized,
    "stream-garbage": Hostile.stream_garbage,
    "stream-html": Hostile.stream_html,
    "stream-wrong-type": Hostile.stream_wrong_type,
    "stream-nothing": Hostile.stream_nothing,
    "stream-comments": Hostile.stream_comments,
    "stream-endless-event": Hostile.stream_endless_event,
    "stream-endless-later": Hostile.stream_endless_later,
    "reset-early": Hostile.reset_early,
    "reset-headers": Hostile.reset_headers,
    "reset-midstream": Hostile.reset_midstream,
    "echo-400": Hostile.echo_400,
    "echo-500": Hostile.echo_500,
    "slow-body": Hostile.slow_body,
    "slow-first": Hostile.slow_first,
    "stall-half": Hostile.stall_half,
}
REDIRECTS = [b for b in BEHAVIOURS if b.startswith("redirect-")]
MALFORMED = ["html", "html-as-json", "invalid-json", "json-array", "json-null", "json-no-data", "empty", "huge",
             "huge-chunked"]
BAD_STREAMS = ["stream-garbage", "stream-html", "stream-wrong-type", "stream-nothing", "stream-comments",
               "stream-endless-event"]
RESETS_BEFORE = ["reset-early", "reset-headers"]     # no answer byte reaches the client: fails over
SLOW = ["slow-body", "stall-half"]
