"""Relaying a stream to the client as its chunks arrive, stopping the
upstream read the moment the client leaves, and ending the stream (with the
dialect's error event) when the request's deadline passes: a stream cannot
hold its slot, its lease or its upstream connection for longer than that."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from gateway.asgi import Headers, Request
from providers.errors import ProviderError

log = logging.getLogger("gateway")


async def relay(req: Request, first: bytes, chunks: AsyncIterator[bytes], headers: Headers, content_type: bytes,
                stream_error: Callable[[str, str, str | None], bytes],
                timeout_s: float) -> tuple[int, float | None]:
    """(events relayed, when the first byte went out). A failure from here on
    can't fail over (the client has bytes already): it ends the stream with the
    dialect's error event. `timeout_s`: the whole request's, counted from its start."""
    state = {"done": False}
    events = first.count(b"data:")
    first_at = None
    me = asyncio.current_task()
    assert me is not None     # called from a request's task
    watcher = asyncio.create_task(_cancel_on_disconnect(req, me, state))
    loop = asyncio.get_running_loop()
    late = loop.call_later(max(0.0, timeout_s - (time.perf_counter() - req.started)), _too_late, me, state)
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
        if state.get("late"):
            me.uncancel()
            log.warning("stream %s ended at its deadline (%gs)", req.id.decode(), timeout_s)
            try:
                await req.send_chunk(stream_error(f"The stream was ended at the model's deadline of {timeout_s:g}s.",
                                                  "server_error", "deadline_exceeded"))
                await req.end_stream()
            except (OSError, RuntimeError):    # the connection went meanwhile
                pass
        elif state.get("gone"):
            me.uncancel()   # the client left: stop reading upstream, quietly
        else:
            raise
    finally:
        state["done"] = True
        watcher.cancel()
        late.cancel()
    return events, first_at


def _too_late(task: asyncio.Task, state: dict[str, bool]) -> None:
    if not state["done"]:
        state["late"] = True
        task.cancel()


async def _cancel_on_disconnect(req: Request, task: asyncio.Task, state: dict[str, bool]) -> None:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            if not state["done"]:
                state["gone"] = True
                task.cancel()
            return
