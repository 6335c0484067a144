"""`Upstream.sse_blocks`: a stream cut into whole events however its bytes
arrive, checked before its first block, and capped per event."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from providers.errors import UpstreamFault
from providers.http import Upstream, UpstreamRequest
from tests.harness import DATA
from tests.upstreams.server import sse_events

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

STREAM = (DATA / "openai" / "chat_stream.sse").read_bytes()


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    async def iter_any(self):
        for c in self._chunks:
            yield c


class _Resp:
    """What sse_blocks reads of an aiohttp response: its headers, its bytes as they arrive."""
    def __init__(self, chunks: list[bytes], content_type: str = "text/event-stream") -> None:
        self.content = _Content(chunks)
        self.headers = {"Content-Type": content_type}
        self.content_type = content_type.partition(";")[0].strip().lower()
        self.released = False

    def release(self) -> None:
        self.released = True


def blocks(chunks: list[bytes], **kw) -> list[bytes]:
    async def go() -> list[bytes]:
        return [b async for b in Upstream("p", **kw).sse_blocks(_Resp(chunks))]  # type: ignore[arg-type]
    return asyncio.run(go())


@pytest.mark.parametrize("crlf", [False, True])
def test_every_split_point_gives_whole_events(crlf):
    stream = STREAM.replace(b"\n", b"\r\n") if crlf else STREAM
    sep = b"\r\n\r\n" if crlf else b"\n\n"
    for at in range(1, len(stream), 7):
        for out in (blocks([stream[:at], stream[at:]]), blocks([stream[i:i + 3] for i in range(0, len(stream), 3)])):
            assert b"".join(out) == stream
            assert all(b.endswith(sep) for b in out)


def test_an_event_past_the_cap_fails_and_a_long_one_under_it_passes():
    event = b'data: {"x":"' + b"y" * 5000 + b'"}\n\n'
    pieces = [event[i:i + 100] for i in range(0, len(event), 100)]
    assert b"".join(blocks(pieces, max_event_bytes=8192)) == event
    with pytest.raises(UpstreamFault, match="over 4096 bytes"):
        blocks(pieces, max_event_bytes=4096)


@pytest.mark.parametrize("chunks,says", [
    ([b"data: <html>\n\n"], "not a JSON object"),
    ([b"data: [1, 2]\n\n"], "not a JSON object"),
    ([], "before its first event"),
    ([b": ping\n\n", b": ping\n\n"], "before its first event"),
    ([b"<html><body>oops</body></html>"], "before its first event"),
])
def test_a_stream_that_is_not_one_fails_before_its_first_block(chunks, says):
    with pytest.raises(UpstreamFault, match=says):
        blocks(chunks)


def test_keep_alive_comments_before_the_first_event_are_dropped():
    assert blocks([b": ping\n\n", STREAM]) == [STREAM]


@pytest.mark.parametrize("content_type", ["text/html", "", "application/json; charset=utf-8",
                                          "text/event-streamx", "text/plain; x=text/event-stream"])
def test_the_content_type_must_be_an_event_stream(content_type):
    async def go() -> None:
        async for _ in Upstream("p").sse_blocks(_Resp([STREAM], content_type)):  # type: ignore[arg-type]
            pass
    with pytest.raises(UpstreamFault, match="not an event stream"):
        asyncio.run(go())


@pytest.mark.parametrize("content_type", ["text/event-stream", "Text/Event-Stream", "text/event-stream; charset=utf-8",
                                          " text/event-stream ;charset=UTF-8"])
def test_an_event_stream_with_parameters_or_capitals_is_one(content_type):
    async def go() -> list[bytes]:
        return [b async for b in Upstream("p").sse_blocks(_Resp([STREAM], content_type))]  # type: ignore[arg-type]
    assert asyncio.run(go()) == [STREAM]


# -- drained: whether the next step would end the stream without waiting -----------------------
# Read from a real loopback server through the upstream client (providers/connections.py),
# which is what tells how much of the answer has arrived.

def _streaming(pieces: list[bytes], gap_s: float) -> Script:
    """Answers each request with `pieces` of a chunked event stream, `gap_s` apart."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i, piece in enumerate(pieces):
            if i and gap_s:
                await writer.drain()
                await asyncio.sleep(gap_s)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.5)
    return script


def _drained_after_each(pieces: list[bytes], gap_s: float) -> list[tuple[bytes, bool]]:
    async def go() -> list[tuple[bytes, bool]]:
        server = await asyncio.start_server(_streaming(pieces, gap_s), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        upstream = Upstream("p")
        try:
            resp = await upstream.send(UpstreamRequest(f"http://127.0.0.1:{port}/v1/chat/completions", b"{}", {}))
            await asyncio.sleep(0.1)        # what the server sends at once has arrived
            blocks = upstream.sse_blocks(resp)
            seen = []
            async for block in blocks:
                seen.append((block, blocks.drained()))
            assert blocks.drained()
            return seen
        finally:
            await upstream.close()
            server.close()
    return asyncio.run(asyncio.wait_for(go(), 20))


def test_a_stream_that_arrived_whole_is_drained_after_its_one_block():
    assert _drained_after_each([STREAM], 0) == [(STREAM, True)]
    events = sse_events(STREAM)
    assert _drained_after_each(events, 0) == [(STREAM, True)]   # pieces that came together are one block


def test_a_stream_still_arriving_is_not_drained_until_its_last_block():
    events = sse_events(STREAM)
    seen = _drained_after_each([events[0], b"".join(events[1:])], 0.3)
    assert [block for block, _ in seen] == [events[0], b"".join(events[1:])]
    assert [drained for _, drained in seen] == [False, True]


def test_an_unterminated_last_event_is_not_drained_until_it_is_given():
    events = sse_events(STREAM)
    unterminated = events[-2].rstrip(b"\n")      # the upstream ends without the blank line
    seen = _drained_after_each([b"".join(events[:-2]) + unterminated], 0)
    assert seen == [(b"".join(events[:-2]), False), (unterminated + b"\n\n", True)]
