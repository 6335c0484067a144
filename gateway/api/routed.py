"""Sending a call along its route and delivering the answer, whole or streamed."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gateway import access_log, cache, protocol, router
from gateway.asgi import Request
from gateway.limits import TargetGate, Ticket
from gateway.metrics import COST, DURATION, OVERHEAD, REQUESTS, TOKENS, TTFT, UNPRICED
from gateway.routes import ServedModel
from gateway.runtime import Runtime
from gateway.spend import NANO, cost_nano, usd
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
        overhead = req.overhead_ms(e.upstream_s)
        try:
            await req.error(e, [*ticket.headers, (b"x-gateway-attempts", str(e.attempts).encode()),
                                (b"x-gateway-overhead-ms", overhead)])
        finally:    # the slot and the hold go back whatever happens to the answer
            await rt.limiter.settle(ticket, None, None, 0)
            answered(req, rt, served.name, "", e.status, ticket.key, e.attempts, overhead, data=call.data)
        return
    target = outcome.target
    provider = target.provider.name
    if target.price is None:
        UNPRICED.inc((target.model, provider))
    headers = [*ticket.headers, (b"x-gateway-provider", target.provider.name.encode()),
               (b"x-gateway-attempts", str(outcome.attempts).encode())]
    if served.cache is not None:
        headers.append((b"x-gateway-cache", b"miss"))
    reply = outcome.reply
    if reply.chunks is None:
        outcome.release()
        usage = reply.read_usage()
        cost = cost_nano(target.price, usage)
        overhead = req.overhead_ms(outcome.upstream_s)
        headers.append((b"x-gateway-cost-usd", usd(cost).encode()))
        headers.append((b"x-gateway-overhead-ms", overhead))
        try:
            await req.respond(200, reply.body, headers, reply.content_type)
        finally:
            await rt.limiter.settle(ticket, provider, usage, cost)
            if gate is not None:
                await gate.release(outcome.target_ticket, usage)
            answered(req, rt, served.name, provider, 200, ticket.key, outcome.attempts, overhead, usage, cost,
                     call.data)
        if cache_as is not None and served.cache is not None:
            try:
                await rt.store.cache_put(cache_as, cache.pack(target.provider.name, reply.body, usage),
                                         served.cache.ttl_s)
            except StoreDown:
                pass
        return
    overhead = req.overhead_ms(outcome.upstream_s)
    headers.append((b"x-gateway-overhead-ms", overhead))
    events = 0
    try:
        events = await _stream(req, served.name, outcome.first_chunk or b"", reply.chunks, headers,
                               reply.content_type)
    finally:
        outcome.release()
        await reply.aclose()
        usage = reply.usage or _streamed_usage(call, events)
        cost = cost_nano(target.price, usage)
        await rt.limiter.settle(ticket, provider, usage, cost)
        if gate is not None:
            await gate.release(outcome.target_ticket, usage)
        answered(req, rt, served.name, provider, 200, ticket.key, outcome.attempts, overhead, usage, cost,
                 call.data)


_STATUS = {code: str(code) for code in range(100, 600)}


def answered(req: Request, rt: Runtime, model: str, provider: str, status: int, key: str = "",
             attempts: int = 0, overhead_ms: bytes | None = None, usage: Usage | None = None, cost: int = 0,
             data: dict[str, Any] | None = None) -> None:
    """What every answered request leaves behind: its counts in the metrics and,
    with `logging.access_log`, its line. `model` is the public name ("" before one
    was resolved); `overhead_ms` the x-gateway-overhead-ms value, when it had one."""
    latency_s = time.perf_counter() - req.started
    REQUESTS.inc((model, provider, _STATUS.get(status) or str(status)))
    DURATION.observe((model,), latency_s)
    overhead_s = None
    if overhead_ms is not None:
        overhead_s = float(overhead_ms) / 1000
        OVERHEAD.observe((model,), overhead_s)
    if usage is not None:
        TOKENS.inc((model, provider, "in"), usage.prompt_tokens)
        TOKENS.inc((model, provider, "out"), usage.completion_tokens)
    if cost:
        COST.inc((model, provider), cost / NANO)
    logging_cfg = rt.config.logging
    if logging_cfg.access_log:
        access_log.write(logging_cfg, {
            "request_id": req.id.decode(), "method": req.method, "path": req.path, "key": key,
            "model": model, "provider": provider, "attempts": attempts, "status": status,
            "latency_ms": round(latency_s * 1000, 3),
            "overhead_ms": None if overhead_s is None else round(overhead_s * 1000, 3),
            "tokens_in": usage.prompt_tokens if usage else 0, "tokens_out": usage.completion_tokens if usage else 0,
            "cost_usd": cost / NANO}, data.get("messages") if data else None)


def _streamed_usage(call: Call, events: int) -> Usage:
    """What a stream that ended without a usage record (the client left, or the
    provider sends none) is charged: the prompt at ~4 bytes a token, and a token
    per content event relayed (role and finish events aside)."""
    return Usage(len(call.body) // 4, max(0, events - 2))


async def _stream(req: Request, model: str, first: bytes, chunks, headers, content_type: bytes) -> int:
    """Relay chunks as they come, and count the events relayed. A failure from
    here on can't fail over (the client has bytes already): it ends the stream
    with an error event."""
    state = {"done": False}
    events = first.count(b"data:")
    watcher = asyncio.create_task(_cancel_on_disconnect(req, asyncio.current_task(), state))
    try:
        await req.start_stream(headers, content_type)
        await req.send_chunk(first)
        TTFT.observe((model,), time.perf_counter() - req.started)
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
