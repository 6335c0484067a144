"""POST /v1/chat/completions and POST /v1/embeddings."""
from __future__ import annotations

from typing import Any

from gateway import cache, protocol
from gateway.api.routed import answered, forward
from gateway.asgi import Request
from gateway.errors import ApiError
from gateway.limits import Ticket
from gateway.metrics import CACHE_HITS, CACHE_MISSES
from gateway.runtime import Runtime
from gateway.store import StoreDown
from providers.base import Call


async def chat_completions(req: Request, rt: Runtime) -> None:
    await _serve(req, rt, "chat")


async def embeddings(req: Request, rt: Runtime) -> None:
    await _serve(req, rt, "embeddings")


async def _serve(req: Request, rt: Runtime, op: str) -> None:
    """Answered here or in `forward`; a refusal on the way (401, 400, 404, 429, 413)
    is counted here and answered by the app."""
    key_name = model = ""
    try:
        key = rt.keys.authenticate(req.headers)
        key_name = key.name
        body = await req.body(rt.max_body)
        if op == "chat":
            data, stream = protocol.chat_request(body)
        else:
            data, stream = protocol.embeddings_request(body), False
        served, strategy = rt.resolve(key, data["model"], "chat" if op == "chat" else "embedding")
        model = served.name
        ticket = await rt.limiter.admit(key, served, data, body)
        cache_as = None
        if served.cache is not None:
            read, write = cache.directives(req.headers)
            lookup = cache.lookup_key(served.cache, key.name, served.name, op, data)
            found = None
            if read:
                try:
                    found = await rt.store.cache_get(lookup)
                except StoreDown:
                    found = None             # a cache that can't answer is a miss
            if found is not None:
                CACHE_HITS.inc((model,))
                await _from_cache(req, rt, ticket, cache.unpack(found), data, stream)
                return
            CACHE_MISSES.inc((model,))
            if write and not stream:
                cache_as = lookup
    except ApiError as e:
        if not req.started_response:
            answered(req, rt, model, "", e.status, key_name)
        raise
    call = Call(op, body, data, served.name, stream, req.id.decode())
    await forward(req, rt, served, call, strategy, ticket, cache_as=cache_as)


async def _from_cache(req: Request, rt: Runtime, ticket: Ticket, hit: cache.Cached, data: dict[str, Any],
                      stream: bool) -> None:
    """A hit: no upstream call, no cost; counted as a request with a cache hit."""
    overhead = req.overhead_ms(0.0)
    headers = [*ticket.headers, (b"x-gateway-cache", b"hit"), (b"x-gateway-provider", hit.provider.encode()),
               (b"x-gateway-attempts", b"0"), (b"x-gateway-cost-usd", b"0"),
               (b"x-gateway-overhead-ms", overhead)]
    try:
        if stream:
            await req.start_stream(headers)
            await req.send_chunk(cache.replay(hit.body, data))
            await req.end_stream()
        else:
            await req.respond(200, hit.body, headers)
    finally:
        await rt.limiter.settle(ticket, hit.provider, None, 0, cache_hit=True)
        answered(req, rt, ticket.model, hit.provider, 200, ticket.key, 0, overhead, data=data)
