"""Sending a call along its route and delivering the answer, whole or streamed."""
from __future__ import annotations

import asyncio
import logging

from gateway import protocol, router
from gateway.asgi import Request
from gateway.routes import ServedModel
from providers.base import Call
from providers.errors import ProviderError

log = logging.getLogger("gateway")


async def forward(req: Request, served: ServedModel, call: Call, strategy: str | None) -> None:
    try:
        outcome = await router.send(served, call, strategy)
    except router.RouteFailed as e:
        await req.error(e, [(b"x-gateway-attempts", str(e.attempts).encode()),
                            (b"x-gateway-overhead-ms", req.overhead_ms(e.upstream_s))])
        return
    headers = [(b"x-gateway-provider", outcome.target.provider.name.encode()),
               (b"x-gateway-attempts", str(outcome.attempts).encode()),
               (b"x-gateway-overhead-ms", req.overhead_ms(outcome.upstream_s))]
    reply = outcome.reply
    if reply.chunks is None:
        outcome.release()
        await req.respond(200, reply.body, headers, reply.content_type)
        return
    try:
        await _stream(req, outcome.first_chunk or b"", reply.chunks, headers, reply.content_type)
    finally:
        outcome.release()
        await reply.aclose()


async def _stream(req: Request, first: bytes, chunks, headers, content_type: bytes) -> None:
    """Relay chunks as they come. A failure from here on can't fail over (the
    client has bytes already): it ends the stream with an error event."""
    state = {"done": False}
    watcher = asyncio.create_task(_cancel_on_disconnect(req, asyncio.current_task(), state))
    try:
        await req.start_stream(headers, content_type)
        await req.send_chunk(first)
        try:
            async for chunk in chunks:
                await req.send_chunk(chunk)
        except ProviderError as e:
            log.warning("stream %s broke after the first byte: %s", req.id.decode(), e.message)
            await req.send_chunk(protocol.stream_error(e.message, e.type, e.code))
        state["done"] = True
        await req.end_stream()
    except asyncio.CancelledError:
        if not state.get("gone"):
            raise
        asyncio.current_task().uncancel()   # the client left: stop reading upstream, quietly
    finally:
        state["done"] = True
        watcher.cancel()


async def _cancel_on_disconnect(req: Request, task, state: dict) -> None:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            if not state["done"]:
                state["gone"] = True
                task.cancel()
            return
