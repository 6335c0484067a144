"""POST /v1/chat/completions and POST /v1/embeddings."""
from __future__ import annotations

from typing import Any

from gateway import cache, protocol
from gateway.api.routed import forward
from gateway.asgi import Request
from gateway.auth import Key
from gateway.limits import Ticket
from gateway.runtime import Runtime
from gateway.store import StoreDown
from providers.base import Call


async def chat_completions(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    body = await req.body(rt.max_body)
    data, stream = protocol.chat_request(body)
    await _serve(req, rt, key, "chat", body, data, stream)


async def embeddings(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    body = await req.body(rt.max_body)
    data = protocol.embeddings_request(body)
    await _serve(req, rt, key, "embeddings", body, data, False)


async def _serve(req: Request, rt: Runtime, key: Key, op: str, body: bytes, data: dict[str, Any],
                 stream: bool) -> None:
    served, strategy = rt.resolve(key, data["model"], "chat" if op == "chat" else "embedding")
    ticket = await rt.limiter.admit(key, served, data, body)
    cache_as = None
    if served.cache is not None:
        read, write = cache.directives(req.headers)
        lookup = cache.lookup_key(served.cache, key.name, served.name, op, data)
        if read:
            try:
                found = await rt.store.cache_get(lookup)
            except StoreDown:
                found = None             # a cache that can't answer is a miss
            if found is not None:
                await _from_cache(req, rt, ticket, cache.unpack(found), data, stream)
                return
        if write and not stream:
            cache_as = lookup
    call = Call(op, body, data, served.name, stream, req.id.decode())
    await forward(req, rt, served, call, strategy, ticket, cache_as=cache_as)


async def _from_cache(req: Request, rt: Runtime, ticket: Ticket, hit: cache.Cached, data: dict[str, Any],
                      stream: bool) -> None:
    """A hit: no upstream call, no cost; counted as a request with a cache hit."""
    headers = [*ticket.headers, (b"x-gateway-cache", b"hit"), (b"x-gateway-provider", hit.provider.encode()),
               (b"x-gateway-attempts", b"0"), (b"x-gateway-cost-usd", b"0"),
               (b"x-gateway-overhead-ms", req.overhead_ms(0.0))]
    if stream:
        await req.start_stream(headers)
        await req.send_chunk(cache.replay(hit.body, data))
        await req.end_stream()
    else:
        await req.respond(200, hit.body, headers)
    await rt.limiter.settle(ticket, hit.provider, None, 0, cache_hit=True)
