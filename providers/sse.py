"""Server-sent events: splitting what a provider streams, and writing OpenAI's."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def events(block: bytes) -> Iterator[tuple[str | None, bytes]]:
    """(event name, data) for each event in `block`, which holds whole events
    (see `Upstream.sse_blocks`). Comment lines and empty data are skipped."""
    for raw in block.replace(b"\r\n", b"\n").split(b"\n\n"):
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


def encode(doc: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def objects_if(block: bytes, marks: tuple[bytes, ...]) -> Iterator[dict[str, Any]]:
    """The JSON objects of a block's events, when the block holds any of `marks`
    (a substring test first: most blocks of a stream are passed on unparsed)."""
    if not any(mark in block for mark in marks):
        return
    for _, data in events(block):
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
