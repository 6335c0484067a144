"""Relaying a stream to the client as its chunks arrive, and stopping the
upstream read the moment the client leaves."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from gateway.asgi import Headers, Request
from providers.errors import ProviderError

log = logging.getLogger("gateway")


async def relay(req: Request, first: bytes, chunks: AsyncIterator[bytes], headers: Headers, content_type: bytes,
                stream_error: Callable[[str, str, str | None], bytes]) -> tuple[int, float | None]:
    """(events relayed, when the first byte went out). A failure from here on
    can't fail over (the client has bytes already): it ends the stream with the
    dialect's error event."""
    state = {"done": False}
    events = first.count(b"data:")
    first_at = None
    me = asyncio.current_task()
    assert me is not None     # called from a request's task
    watcher = asyncio.create_task(_cancel_on_disconnect(req, me, state))
    try:
        await req.start_stream(headers, content_type)
        await req.send_chunk(first)
        first_at = time.perf_counter()
        try:
            async for chunk in chunks:
                events += chunk.count(b"data:")
                await req.send_chunk(chunk)
        except ProviderError as e:
            log.warning("stream %s broke after the first byte: %s", req.id.decode(), e.message)
            await req.send_chunk(stream_error(e.message, e.type, e.code))
        state["done"] = True
        await req.end_stream()
    except asyncio.CancelledError:
        if not state.get("gone"):
            raise
        me.uncancel()   # the client left: stop reading upstream, quietly
    finally:
        state["done"] = True
        watcher.cancel()
    return events, first_at


async def _cancel_on_disconnect(req: Request, task: asyncio.Task, state: dict[str, bool]) -> None:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            if not state["done"]:
                state["gone"] = True
                task.cancel()
            return
