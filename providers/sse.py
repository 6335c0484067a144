"""Server-sent events: splitting what a provider streams, and writing OpenAI's."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"

# What a stream's blocks pass through on their way to the client, one call a block (whole
# events): the block to relay (b"" relays nothing), noting what it needs (usage) as it goes.
Watch = Callable[[bytes], bytes]


def events(block: bytes) -> Iterator[tuple[str | None, bytes]]:
    """(event name, data) for each event in `block`, which holds whole events
    (see `Upstream.sse_blocks`). Comment lines and empty data are skipped."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
    at, size = 0, len(block)
    while at < size:
        # One event at a time (a caller that wants the first stops there).
        end = block.find(b"\n\n", at)
        if end < 0:
            end = size
        raw, at = block[at:end], end + 2
        if raw.startswith(b"data: ") and b"\n" not in raw:    # the usual event: one data line
            yield None, raw[6:]
            continue
        if not raw.strip():
            continue
        name: str | None = None
        data: list[bytes] = []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if data:
            yield name, b"\n".join(data)


def first_data(block: bytes) -> bytes | None:
    """The data of `block`'s first event when it is the usual kind, a lone
    `data: ` line ending in a blank line (None: read it with `events`)."""
    if not block.startswith(b"data: "):
        return None
    end = block.find(b"\n\n")
    if end < 0 or block.find(b"\n", 0, end) >= 0 or block.find(b"\r", 0, end) >= 0:
        return None
    return block[6:end]


def lone_data_at(block: bytes, at: int) -> bytes | None:
    """The data of the event of `block` that holds offset `at`, when that event is
    a lone `data: ` line (None: read the block with `spans_with`)."""
    span = lone_event_at(block, at)
    return None if span is None else block[span[0] + 6:span[1]]


def lone_event_at(block: bytes, at: int) -> tuple[int, int] | None:
    """(start, end) of the event of `block` that holds offset `at`, when that event is
    a lone `data: ` line: `block[start:end]` is the line, a blank line follows it."""
    start = block.rfind(b"\n\n", 0, at) + 2
    if start == 1:      # none before: the block's first event
        start = 0
    end = block.find(b"\n\n", at)
    if end < 0 or not block.startswith(b"data: ", start) or block.find(b"\n", start, end) >= 0 \
            or block.find(b"\r", start, end) >= 0:
        return None
    return start, end


def encode(doc: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


_SEPARATORS = (b"\n\n", b"\r\n\r\n", b"\r\r")


def spans_with(block: bytes, marks: tuple[bytes, ...]) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, data) of each event in `block` (whole events) that holds any of
    `marks`: found by substring search, so the events without one are not split
    up or parsed (a provider may send a whole answer's events in one block)."""
    at = 0
    separators = _SEPARATORS if b"\r" in block else _SEPARATORS[:1]
    while True:
        mark_at = -1
        for mark in marks:
            i = block.find(mark, at)
            if i >= 0 and (mark_at < 0 or i < mark_at):
                mark_at = i
        if mark_at < 0:
            return
        start, end = 0, len(block)
        for sep in separators:
            i = block.rfind(sep, 0, mark_at)
            if i >= 0 and i + len(sep) > start:
                start = i + len(sep)
            i = block.find(sep, mark_at)
            if i >= 0 and i + len(sep) < end:
                end = i + len(sep)
        for _, data in events(block[start:end]):
            if any(mark in data for mark in marks):     # not a comment or an event name
                yield start, end, data
        at = end


def objects_if(block: bytes, marks: tuple[bytes, ...]) -> Iterator[dict[str, Any]]:
    """The JSON objects of the events that hold any of `marks` (most events of a
    stream are passed on unsplit and unparsed)."""
    for _, _, data in spans_with(block, marks):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            yield doc


def chat_chunks(block: bytes) -> Iterator[Any]:
    """The parsed chunks of chat SSE bytes holding whole events, `[DONE]` and
    comments aside. Data that is not JSON raises ValueError (orjson's)."""
    for _, data in events(block):
        if data.strip() != b"[DONE]":
            yield orjson.loads(data)
