"""`Upstream.sse_blocks`: a stream cut into whole events however its bytes
arrive, checked before its first block, and capped per event."""
from __future__ import annotations

import asyncio

import pytest

from providers.errors import UpstreamFault
from providers.http import Upstream
from tests.harness import DATA

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
