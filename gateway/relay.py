"""Relaying a stream to the client as its chunks arrive, stopping the
upstream read when the client leaves (watched for from WATCH_AFTER_S into the
stream: one that ends sooner never pays for the watching), and ending the stream (with the
dialect's error event) when the request's deadline passes: a stream cannot
hold its slot, its lease or its upstream connection for longer than that.
Both are checked by the process's one ticker (providers/ticker.py): a stream only
joins and leaves a set (a timer of its own cost more than the short streams it guards).

A stream whose upstream had answered whole by the time its first block was
checked (a short answer from a fast server) is sent in one go, head, events
and end, with nothing to guard: its chunk iterator says so (`drained`)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from gateway.asgi import Headers, Request
from providers.base import Reply
from providers.errors import ProviderError
from providers.ticker import Ticker

log = logging.getLogger("gateway")


async def relay(req: Request, first: bytes, chunks: AsyncIterator[bytes], headers: Headers, content_type: bytes,
                stream_error: Callable[[str, str, str | None], bytes],
                timeout_s: float, reply: Reply | None = None) -> tuple[int, float | None]:
    """(events relayed, when the first byte went out). A failure from here on
    can't fail over (the client has bytes already): it ends the stream with the
    dialect's error event. `timeout_s`: the whole request's, counted from its start.
    Events are counted only while `reply` has no usage: they price a stream that ends
    without one, and counting searches every byte."""
    events = first.count(b"data:") if reply is None or reply.usage is None else 0
    drained = getattr(chunks, "drained", None)
    if drained is not None and drained():
        await req.start_stream(headers, content_type)
        await req.end_stream(first)
        return events, time.perf_counter()
    state = {"done": False}
    first_at = None
    me = asyncio.current_task()
    assert me is not None     # called from a request's task
    # A client leaving is watched for by a task of its own, started only once the stream has
    # gone on for WATCH_AFTER_S: most streams of a few words end before, and never pay for it.
    guard = _Guard(req, me, state, req.started + timeout_s)
    loop = me.get_loop()
    ticker = Ticker.of(loop)
    ticker.add(guard, loop)
    try:
        await req.start_stream(headers, content_type)
        await req.send_chunk(first)
        first_at = time.perf_counter()
        try:
            async for chunk in chunks:
                if reply is None or reply.usage is None:
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
        ticker.remove(guard)
    return events, first_at


WATCH_AFTER_S = 0.25     # a watch starts up to TICK_S after this, and a stream ends up to TICK_S past its deadline


class _Guard:
    """What the ticker checks of one stream: its deadline, and from WATCH_AFTER_S
    into it, the task that watches for the client leaving."""
    __slots__ = ("req", "task", "state", "deadline", "watch_at", "watcher")

    def __init__(self, req: Request, task: asyncio.Task, state: dict[str, bool], deadline: float) -> None:
        self.req, self.task, self.state, self.deadline = req, task, state, deadline
        self.watch_at = req.started + WATCH_AFTER_S
        self.watcher: asyncio.Task | None = None

    def check(self, now: float) -> bool:
        """False: this stream is over (ended at its deadline here, or done)."""
        if self.state["done"]:
            return False
        if now >= self.deadline:
            self.state["late"] = True
            self.task.cancel()
            return False
        if self.watcher is None and now >= self.watch_at:
            self.watcher = self.task.get_loop().create_task(_cancel_on_disconnect(self.req, self.task, self.state))
        return True

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()


async def _cancel_on_disconnect(req: Request, task: asyncio.Task, state: dict[str, bool]) -> None:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            if not state["done"]:
                state["gone"] = True
                task.cancel()
            return
