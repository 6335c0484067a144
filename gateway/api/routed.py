"""Sending a call along its route and delivering the answer, whole or streamed."""
from __future__ import annotations

import asyncio
import logging

from gateway import cache, protocol, router
from gateway.asgi import Request
from gateway.limits import TargetGate, Ticket
from gateway.metrics import COUNTERS
from gateway.routes import ServedModel
from gateway.runtime import Runtime
from gateway.spend import cost_nano, usd
from gateway.store import StoreDown
from providers.base import Call, Usage
from providers.errors import ProviderError

log = logging.getLogger("gateway")


async def forward(req: Request, rt: Runtime, served: ServedModel, call: Call, strategy: str | None,
                  ticket: Ticket, cache_as: str | None = None) -> None:
    """Route the call and deliver the answer; `cache_as`: store a whole answer under that key."""
    gate = TargetGate(rt.limiter, call.data, call.body) if served.gated else None
    try:
        outcome = await router.send(served, call, strategy, gate)
    except router.RouteFailed as e:
        try:
            await req.error(e, [*ticket.headers, (b"x-gateway-attempts", str(e.attempts).encode()),
                                (b"x-gateway-overhead-ms", req.overhead_ms(e.upstream_s))])
        finally:    # the slot and the hold go back whatever happens to the answer
            await rt.limiter.settle(ticket, None, None, 0)
        return
    target = outcome.target
    if target.price is None:
        COUNTERS.inc("gateway_unpriced_requests_total", provider=target.provider.name, model=target.model)
    headers = [*ticket.headers, (b"x-gateway-provider", target.provider.name.encode()),
               (b"x-gateway-attempts", str(outcome.attempts).encode())]
    if served.cache is not None:
        headers.append((b"x-gateway-cache", b"miss"))
    reply = outcome.reply
    if reply.chunks is None:
        outcome.release()
        usage = reply.read_usage()
        cost = cost_nano(target.price, usage)
        headers.append((b"x-gateway-cost-usd", usd(cost).encode()))
        headers.append((b"x-gateway-overhead-ms", req.overhead_ms(outcome.upstream_s)))
        try:
            await req.respond(200, reply.body, headers, reply.content_type)
        finally:
            await rt.limiter.settle(ticket, target.provider.name, usage, cost)
            if gate is not None:
                await gate.release(outcome.target_ticket, usage)
        if cache_as is not None and served.cache is not None:
            try:
                await rt.store.cache_put(cache_as, cache.pack(target.provider.name, reply.body, usage),
                                         served.cache.ttl_s)
            except StoreDown:
                pass
        return
    headers.append((b"x-gateway-overhead-ms", req.overhead_ms(outcome.upstream_s)))
    events = 0
    try:
        events = await _stream(req, outcome.first_chunk or b"", reply.chunks, headers, reply.content_type)
    finally:
        outcome.release()
        await reply.aclose()
        usage = reply.usage or _streamed_usage(call, events)
        await rt.limiter.settle(ticket, target.provider.name, usage, cost_nano(target.price, usage))
        if gate is not None:
            await gate.release(outcome.target_ticket, usage)


def _streamed_usage(call: Call, events: int) -> Usage:
    """What a stream that ended without a usage record (the client left, or the
    provider sends none) is charged: the prompt at ~4 bytes a token, and a token
    per content event relayed (role and finish events aside)."""
    return Usage(len(call.body) // 4, max(0, events - 2))


async def _stream(req: Request, first: bytes, chunks, headers, content_type: bytes) -> int:
    """Relay chunks as they come, and count the events relayed. A failure from
    here on can't fail over (the client has bytes already): it ends the stream
    with an error event."""
    state = {"done": False}
    events = first.count(b"data:")
    watcher = asyncio.create_task(_cancel_on_disconnect(req, asyncio.current_task(), state))
    try:
        await req.start_stream(headers, content_type)
        await req.send_chunk(first)
        try:
            async for chunk in chunks:
                events += chunk.count(b"data:")
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
    return events


async def _cancel_on_disconnect(req: Request, task, state: dict) -> None:
    while True:
        message = await req.receive()
        if message["type"] == "http.disconnect":
            if not state["done"]:
                state["gone"] = True
                task.cancel()
            return
