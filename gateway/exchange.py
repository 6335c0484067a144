"""One routed request, whichever API it came in through.

An inbound API is a `Dialect`: it parses its wire format into the internal
call and renders answers and errors back in its own shape. Everything else
happens here, once, for every dialect: the key, the model, admission against
limits and budget, the cache, the route with its failover, the answer whole
or streamed, and the request's end (limits settled, the provider's slot and
quota released, cost, metrics, the access log) with the `x-gateway-*`
headers. Adding an inbound API is a dialect module and a route line; adding
a metric or a ledger field is an edit here.

    async with Exchange(req, rt, dialect) as x:   # refusals answered in the dialect's shape
        key = x.authenticate()
        ...                                        # parse, resolve, x.admit(), x.route(), x.answer()
    # leaving the block ends the request exactly once, however it left
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gateway import access_log, cache, router
from gateway.asgi import ClientGone, Headers, Request, SomeHeaders
from gateway.auth import Key
from gateway.errors import ApiError
from gateway.limits import Gate, TargetGate, Ticket
from gateway.metrics import CACHE_HITS, CACHE_MISSES, COST, DURATION, OVERHEAD, REQUESTS, TOKENS, TTFT, UNPRICED
from gateway.protocol import stream_error
from gateway.relay import relay
from gateway.routes import ServedModel, Target
from gateway.runtime import Runtime
from gateway.spend import NANO, cost_nano, usd
from gateway.store import StoreDown
from providers.base import Call, Usage

log = logging.getLogger("gateway")

# The gateway's own answer headers, named here only.
PROVIDER = b"x-gateway-provider"
ATTEMPTS = b"x-gateway-attempts"
OVERHEAD_MS = b"x-gateway-overhead-ms"
COST_USD = b"x-gateway-cost-usd"
CACHE = b"x-gateway-cache"

_STATUS = {code: str(code) for code in range(100, 600)}
_CLIENT_GONE = 499     # as nginx logs a client that left before its answer


@dataclass(slots=True)
class Inbound:
    """A request as its dialect read it: the parsed body, and what routing needs of it."""
    model: str
    data: dict[str, Any]
    stream: bool = False


class Dialect:
    """An inbound API's wire format. The defaults are OpenAI's: errors in its
    envelope, answers passed through as the provider adapter made them."""
    kind = "chat"            # the kind of model it routes to: chat | embedding | video
    op = "chat"              # the provider operation a call asks for
    cacheable = True         # whole answers may be kept by models with `cache:`

    def error(self, err: ApiError) -> bytes:
        return err.body()

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        """A failure after the first streamed byte: one more event in the stream."""
        return stream_error(message, type, code)

    def replay(self, body: bytes, data: dict[str, Any]) -> bytes:
        """A cached whole answer, as the stream it would have been."""
        return cache.replay(body, data)


class AnswerDialect(Dialect, ABC):
    """A request-and-answer API (chat, embeddings, ...), served whole by `serve`."""

    @abstractmethod
    def parse(self, body: bytes) -> Inbound:
        """The request, or an ApiError (400) saying what is wrong with it."""


class Exchange:
    """What one request learned on its way, and its end, written once."""
    __slots__ = ("req", "rt", "dialect", "key", "model", "ticket", "headers", "status", "target", "provider",
                 "attempts", "upstream_s", "usage", "cost", "overhead", "data", "cache_hit", "_gate",
                 "_target_ticket", "_outcome", "_ended")

    def __init__(self, req: Request, rt: Runtime, dialect: Dialect) -> None:
        self.req = req
        self.rt = rt
        self.dialect = dialect
        self.key: Key | None = None
        self.model = ""                       # the public model name, once resolved
        self.ticket: Ticket | None = None     # what admission charged, settled at the end
        self.headers: Headers = []            # rate-limit headers, then the gateway's own
        self.status = 500                     # until something is answered
        self.target: Target | None = None     # who served it
        self.provider = ""                    # its provider's name (or the cached answer's)
        self.attempts = 0
        self.upstream_s = 0.0                 # time spent waiting on providers
        self.usage: Usage | None = None
        self.cost = 0                         # nano-USD
        self.overhead: bytes | None = None    # the x-gateway-overhead-ms value sent
        self.data: dict[str, Any] | None = None   # the parsed request, for the access log's prompts
        self.cache_hit = False
        self._gate: Gate | None = None        # the providers' own limits, per attempt
        self._target_ticket: Ticket | None = None
        self._outcome: router.Outcome | None = None
        self._ended = False

    async def __aenter__(self) -> Exchange:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> bool:
        handled = False
        if isinstance(err, ApiError):
            handled = True
            self.status = err.status
            if not self.req.started_response:
                if isinstance(err, router.RouteFailed):     # no target answered: say how far it got
                    self.headers += [(ATTEMPTS, str(self.attempts).encode()), (OVERHEAD_MS, self._overhead())]
                await self.req.respond(err.status, self.dialect.error(err), [*err.headers, *self.headers])
        elif isinstance(err, ClientGone):
            self.status = _CLIENT_GONE
        await self.end()
        return handled

    # -- on the way ----------------------------------------------------------------

    def authenticate(self) -> Key:
        self.key = self.rt.keys.authenticate(self.req.headers)
        return self.key

    def resolve(self, requested: str) -> tuple[ServedModel, str | None]:
        assert self.key is not None
        served, strategy = self.rt.resolve(self.key, requested, self.dialect.kind)
        self.model = served.name
        return served, strategy

    async def admit(self, served: ServedModel, data: dict[str, Any], body: bytes) -> None:
        assert self.key is not None
        self.data = data
        self._keep(await self.rt.limiter.admit(self.key, served, data, body))
        if served.gated:
            self._gate = TargetGate(self.rt.limiter, data, body)

    async def admit_video(self, served: ServedModel, seconds: int, gate: Gate) -> None:
        assert self.key is not None
        self._keep(await self.rt.limiter.admit_video(self.key, served, seconds))
        self._gate = gate

    def _keep(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.headers += ticket.headers

    async def route(self, served: ServedModel, call: Call, strategy: str | None,
                    only: Callable[[Target], bool] | None = None) -> router.Outcome:
        """The first target that answers, after failover; a RouteFailed (an ApiError) if none did."""
        try:
            outcome = await router.send(served, call, strategy, self._gate, only=only)
        except router.RouteFailed as e:
            self.attempts, self.upstream_s = e.attempts, e.upstream_s
            raise
        self._outcome = outcome
        self.target, self.attempts, self.upstream_s = outcome.target, outcome.attempts, outcome.upstream_s
        self.provider = outcome.target.provider.name
        self._target_ticket = outcome.target_ticket
        if outcome.target.price is None:
            UNPRICED.inc((outcome.target.model, outcome.target.provider.name))
        self.headers += [(PROVIDER, outcome.target.provider.name.encode()),
                         (ATTEMPTS, str(outcome.attempts).encode())]
        return outcome

    def let_go_of_target(self) -> None:
        """The target's answer is in: it is no longer busy with this request."""
        if self._outcome is not None:
            self._outcome.release()
            self._outcome = None

    def _overhead(self) -> bytes:
        if self.overhead is None:
            self.overhead = self.req.overhead_ms(self.upstream_s)
        return self.overhead

    def priced(self, usage: Usage | None, *, seconds: float = 0.0) -> int:
        """The cost of what the target did, kept for the end."""
        self.usage = usage
        self.cost = cost_nano(self.target.price if self.target else None, usage, seconds=seconds)
        return self.cost

    async def answer(self, status: int, body: bytes, content_type: bytes = b"application/json",
                     headers: SomeHeaders = (), cost: bool = True) -> None:
        """A whole answer, with the gateway's headers (and its cost when it has one)."""
        extra = [(COST_USD, usd(self.cost).encode())] if cost else []
        self.status = status
        await self.req.respond(status, body, [*self.headers, *extra, *headers, (OVERHEAD_MS, self._overhead())],
                               content_type)

    async def stream(self, first: bytes, chunks: AsyncIterator[bytes], content_type: bytes) -> int:
        """Relay a stream; the number of events relayed."""
        self.status = 200
        events, first_at = await relay(self.req, first, chunks, [*self.headers, (OVERHEAD_MS, self._overhead())],
                                       content_type, self.dialect.stream_error)
        if first_at is not None:
            TTFT.observe((self.model,), first_at - self.req.started)
        return events

    # -- the end -------------------------------------------------------------------

    async def end(self) -> None:
        """Settle, release, count and log: once, however the request ended."""
        if self._ended:
            return
        self._ended = True
        self.let_go_of_target()
        try:
            if self.ticket is not None:
                await self.rt.limiter.settle(self.ticket, self.provider or None, self.usage, self.cost,
                                             cache_hit=self.cache_hit)
            if self._gate is not None and self._target_ticket is not None:
                await self._gate.release(self._target_ticket, self.usage)
        finally:
            self._count()

    def _count(self) -> None:
        model, provider, usage, cost = self.model, self.provider, self.usage, self.cost
        latency_s = time.perf_counter() - self.req.started
        REQUESTS.inc((model, provider, _STATUS.get(self.status) or str(self.status)))
        DURATION.observe((model,), latency_s)
        overhead_s = None
        if self.overhead is not None:
            overhead_s = float(self.overhead) / 1000
            OVERHEAD.observe((model,), overhead_s)
        if usage is not None:
            TOKENS.inc((model, provider, "in"), usage.prompt_tokens)
            TOKENS.inc((model, provider, "out"), usage.completion_tokens)
        if cost:
            COST.inc((model, provider), cost / NANO)
        logging_cfg = self.rt.config.logging
        if logging_cfg.access_log:
            req = self.req
            access_log.write(logging_cfg, {
                "request_id": req.id.decode(), "method": req.method, "path": req.path,
                "key": self.key.name if self.key else "", "model": model, "provider": provider,
                "attempts": self.attempts, "status": self.status, "latency_ms": round(latency_s * 1000, 3),
                "overhead_ms": None if overhead_s is None else round(overhead_s * 1000, 3),
                "tokens_in": usage.prompt_tokens if usage else 0,
                "tokens_out": usage.completion_tokens if usage else 0,
                "cost_usd": cost / NANO}, self.data.get("messages") if self.data else None)


# -- request and answer APIs (chat, embeddings, ...) ---------------------------------

def handler(dialect: AnswerDialect) -> Callable[[Request, Runtime], Any]:
    """The route handler of a request-and-answer dialect."""
    async def serve_dialect(req: Request, rt: Runtime) -> None:
        await serve(req, rt, dialect)
    serve_dialect.__name__ = f"serve_{type(dialect).__name__}"
    return serve_dialect


async def serve(req: Request, rt: Runtime, dialect: AnswerDialect) -> None:
    async with Exchange(req, rt, dialect) as x:
        key = x.authenticate()
        body = await req.body(rt.max_body)
        inbound = dialect.parse(body)
        served, strategy = x.resolve(inbound.model)
        await x.admit(served, inbound.data, body)
        cache_as = None
        if served.cache is not None and dialect.cacheable:
            hit, cache_as = await _look_up(x, served, key, inbound)
            if hit is not None:
                await _from_cache(x, hit, inbound)
                return
        call = Call(dialect.op, body, inbound.data, served.name, inbound.stream, req.id.decode())
        outcome = await x.route(served, call, strategy)
        if served.cache is not None:
            x.headers.append((CACHE, b"miss"))
        reply = outcome.reply
        if reply.chunks is None:
            x.let_go_of_target()
            x.priced(reply.read_usage())
            await x.answer(200, reply.body, reply.content_type)
            if cache_as is not None and served.cache is not None:
                try:
                    await rt.store.cache.put(cache_as, cache.pack(outcome.target.provider.name, reply.body, x.usage),
                                             served.cache.ttl_s)
                except StoreDown:
                    pass
            return
        events = 0
        try:
            events = await x.stream(outcome.first_chunk or b"", reply.chunks, reply.content_type)
        finally:
            x.let_go_of_target()
            await reply.aclose()
            x.priced(reply.usage or _streamed_usage(call, events))


async def _look_up(x: Exchange, served: ServedModel, key: Key,
                   inbound: Inbound) -> tuple[cache.Cached | None, str | None]:
    """(a hit, or None; the key to keep this answer under, or None)."""
    assert served.cache is not None
    read, write = cache.directives(x.req.headers)
    lookup = cache.lookup_key(served.cache, key.name, served.name, x.dialect.op, inbound.data)
    found = None
    if read:
        try:
            found = await x.rt.store.cache.get(lookup)
        except StoreDown:
            found = None             # a cache that can't answer is a miss
    if found is not None:
        CACHE_HITS.inc((served.name,))
        return cache.unpack(found), None
    CACHE_MISSES.inc((served.name,))
    return None, lookup if write and not inbound.stream else None


async def _from_cache(x: Exchange, hit: cache.Cached, inbound: Inbound) -> None:
    """A hit: no upstream call and no cost, counted as a request served from the cache."""
    x.provider, x.cache_hit, x.status = hit.provider, True, 200
    x.headers += [(CACHE, b"hit"), (PROVIDER, hit.provider.encode()), (ATTEMPTS, b"0")]
    if inbound.stream:
        await x.req.start_stream([*x.headers, (COST_USD, b"0"), (OVERHEAD_MS, x._overhead())])
        await x.req.send_chunk(x.dialect.replay(hit.body, inbound.data))
        await x.req.end_stream()
    else:
        await x.answer(200, hit.body)


def _streamed_usage(call: Call, events: int) -> Usage:
    """What a stream that ended without a usage record (the client left, or the
    provider sends none) is charged: the prompt at ~4 bytes a token, and a token
    per content event relayed (role and finish events aside)."""
    return Usage(len(call.body) // 4, max(0, events - 2))
