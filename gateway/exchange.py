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
        x.key = key = rt.keys.authenticate(req.headers)
        ...            # parse, resolve (x.model), x.admitted(limiter's ticket), x.routed(router.send(...)),
        await req.respond(200, body, x.answering(200))
    # leaving the block ends the request exactly once, however it left
"""
from __future__ import annotations

import functools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from gateway import access_log, cache, protocol, router
from gateway.asgi import ClientGone, Headers, Request
from gateway.auth import Key
from gateway.errors import ApiError
from gateway.limits import Gate, TargetGate, Ticket
from gateway.metrics import CACHE_HITS, CACHE_MISSES, COST, DURATION, OVERHEAD, REQUESTS, TOKENS, TTFT, UNPRICED
from gateway.relay import relay
from gateway.routes import Target
from gateway.runtime import Runtime
from gateway.spend import NANO, cost_nano, usd
from gateway.store import StoreDown
from providers.base import Call, Native, Reply, Usage

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
    """A request as its dialect read it: the parsed body, and what routing needs of it.

    A dialect that translates (the client speaks one format, providers another)
    sets `prepare`, awaited once the model is known: it may read state (history)
    and sets `data` and `send` to the provider-format request, and `answer` to
    what turns the provider's answer back into the client's format."""
    model: str
    data: dict[str, Any]
    stream: bool = False
    send: bytes | None = None              # the body providers get, when not the client's own
    native: Native | None = None           # the client's own request, for providers that speak its API
    answer: Translation | None = None
    prepare: Callable[[Exchange], Awaitable[None]] | None = None


class Translation(ABC):
    """One request's answer, turned from the providers' chat format into its dialect's."""
    content_type = b"application/json"
    stream_content_type = b"text/event-stream"    # read once `stream` has made its first chunk

    @abstractmethod
    async def whole(self, x: Exchange, reply: Reply) -> bytes:
        """A whole answer (x.usage and x.cost are known)."""

    @abstractmethod
    def stream(self, x: Exchange, reply: Reply, first: bytes) -> AsyncGenerator[bytes, None]:
        """The stream (`first`, then `reply.chunks`) as the client's events (an
        async generator; it ends what it began)."""

    @abstractmethod
    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        """A failure after the first streamed byte, as this stream's closing event."""

    def streamed_cost(self, x: Exchange, reply: Reply) -> int:
        """What a stream costs besides its tokens (speech: its characters), in nano-USD, added once it ends."""
        return 0


class Dialect:
    """An inbound API's wire format. The defaults are OpenAI's: errors in its
    envelope, answers passed through as the provider adapter made them."""
    kind = "chat"            # the kind of model it routes to: chat | embedding | video
    op = "chat"              # the provider operation a call asks for
    endpoint = "chat"        # the `endpoint` label of gateway_requests_total
    cacheable = True         # whole answers may be kept by models with `cache:`

    def error(self, err: ApiError) -> bytes:
        return err.body()

    def status_of(self, err: ApiError) -> int:
        """The HTTP status this API answers an error with (some APIs number a few differently)."""
        return err.status

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        """A failure after the first streamed byte: one more event in the stream."""
        return protocol.stream_error(message, type, code)

    def replay(self, body: bytes, data: dict[str, Any]) -> bytes:
        """A cached whole answer, as the stream it would have been."""
        return cache.replay(body, data)


class AnswerDialect(Dialect, ABC):
    """A request-and-answer API (chat, embeddings, ...), served whole by `serve`."""
    form = False     # True: its requests are multipart/form-data, read by `read_form`
    form_max_body = 0    # a form's body may be this large even past `server.max_body_mb` (audio uploads)

    @abstractmethod
    def parse(self, body: bytes) -> Inbound:
        """The request, or an ApiError (400) saying what is wrong with it."""

    async def read_form(self, req: Request, limit: int, uploads: ExitStack) -> tuple[bytes, Inbound]:
        """A multipart/form-data request (dialects with `form`): (the body limits and providers
        see, the request), or its 400 or 413. Read whole here; a dialect whose uploads are too
        large to hold reads them as they arrive, and enters what keeps them into `uploads`,
        which closes them once the request has ended."""
        body = await req.body(limit)
        return body, self.parse_form(req.headers.get(b"content-type", b""), body)

    def parse_form(self, content_type: bytes, body: bytes) -> Inbound:
        """A multipart/form-data request read whole, or its 400."""
        return self.parse(body)


class Exchange:
    """What one request learned on its way, and its end, written once."""
    __slots__ = ("req", "rt", "dialect", "key", "model", "ticket", "headers", "status", "target", "provider",
                 "attempts", "attempt_log", "upstream_s", "usage", "cost", "overhead", "data", "cache_hit",
                 "gate", "trace", "_target_ticket", "_outcome", "_ended")

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
        self.attempt_log: list[router.Attempt] | None = None     # each attempt, once one failed (router.Outcome)
        self.upstream_s = 0.0                 # time spent waiting on providers
        self.usage: Usage | None = None
        self.cost = 0                         # nano-USD
        self.overhead: bytes | None = None    # the x-gateway-overhead-ms value sent
        self.data: dict[str, Any] | None = None   # the parsed request, for the access log's prompts
        self.cache_hit = False
        self.gate: Gate | None = None         # the providers' own limits, per attempt
        self._target_ticket: Ticket | None = None
        self._outcome: router.Outcome | None = None
        self._ended = False
        self.trace = rt.tracing.request(req, dialect.op) if rt.tracing is not None else None   # gateway/telemetry/

    async def __aenter__(self) -> Exchange:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> bool:
        handled = False
        if isinstance(err, ApiError):
            handled = True
            await self.refuse(err)
        elif isinstance(err, ClientGone):
            self.status = _CLIENT_GONE
        await self.end()
        return handled

    async def refuse(self, err: ApiError) -> None:
        """An error answer in the dialect's shape (unless an answer has begun already)."""
        self.status = self.dialect.status_of(err)
        if self.trace is not None:
            self.trace.refused(err)
        if self.req.started_response:
            return
        if isinstance(err, router.RouteFailed):     # no target answered: say how far it got
            self.attempts, self.upstream_s, self.attempt_log = err.attempts, err.upstream_s, err.attempt_log
            self.headers += [(ATTEMPTS, str(err.attempts).encode()), (OVERHEAD_MS, self._overhead())]
        await self.req.respond(self.status, self.dialect.error(err), [*err.headers, *self.headers])

    # -- on the way ----------------------------------------------------------------
    # (Callers set `key` and `model` themselves as they learn them: a call saved is ~0.2 µs.)

    def admitted(self, ticket: Ticket, gate: Gate | None = None) -> None:
        """What the limiter charged (settled at the end), and the providers' own limits to pass per attempt."""
        self.ticket = ticket
        self.headers += ticket.headers
        self.gate = gate

    def routed(self, outcome: router.Outcome) -> router.Outcome:
        """The target that answered (`router.send(..., x.gate)`; a RouteFailed is refused as it is)."""
        self._outcome = outcome
        self.target, self.attempts, self.upstream_s = outcome.target, outcome.attempts, outcome.upstream_s
        self.attempt_log = outcome.attempt_log
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

    def answering(self, status: int, *more: tuple[bytes, bytes]) -> Headers:
        """The headers of a whole answer about to be sent: the gateway's, its cost, then `more`."""
        self.status = status
        cost = usd(self.cost).encode() if self.cost else b"0"     # formatting a float: ~0.3 µs
        self.overhead = overhead = self.req.overhead_ms(self.upstream_s)
        return [*self.headers, (COST_USD, cost), *more, (OVERHEAD_MS, overhead)]

    async def stream(self, first: bytes, chunks: AsyncIterator[bytes], content_type: bytes, timeout_s: float,
                     stream_error: Callable[[str, str, str | None], bytes] | None = None,
                     reply: Reply | None = None) -> int:
        """Relay a stream, ended at the request's deadline; the number of events relayed
        while `reply` had no usage (what prices a stream that ends without one)."""
        self.status = 200
        events, first_at = await relay(self.req, first, chunks, [*self.headers, (OVERHEAD_MS, self._overhead())],
                                       content_type, stream_error or self.dialect.stream_error, timeout_s, reply)
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
        self._count()       # first: settling may wait a moment for company (the Redis store batches it)
        if self.trace is not None:
            self.trace.end(self)
        if self.ticket is not None:
            await self.rt.limiter.settle(self.ticket, self.provider or None, self.usage, self.cost,
                                         cache_hit=self.cache_hit)
        if self.gate is not None and self._target_ticket is not None:
            await self.gate.release(self._target_ticket, self.usage)

    def _count(self) -> None:
        model, provider, usage, cost = self.model, self.provider, self.usage, self.cost
        latency_s = time.perf_counter() - self.req.started
        REQUESTS.inc((model, provider, _STATUS.get(self.status) or str(self.status), self.dialect.endpoint))
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
        if logging_cfg.requests.enabled:     # one tuple appended (gateway/request_log.py)
            self.rt.services.request_log.add(self, latency_s, overhead_s, logging_cfg.prompts)
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

def handler(dialect: AnswerDialect) -> Callable[[Request, Runtime], Awaitable[None]]:
    """The route handler of a request-and-answer dialect."""
    # A partial: no coroutine of its own per request (a form's has one, to close its uploads)
    return functools.partial(serve_form if dialect.form else serve, dialect)


async def serve_form(dialect: AnswerDialect, req: Request, rt: Runtime) -> None:
    """`serve` for a multipart/form-data dialect: what keeps its uploads (a temp file) is closed
    once the request has ended, however it ended (answered, refused, the client gone, cancelled)."""
    with ExitStack() as uploads:
        await serve(dialect, req, rt, uploads)


async def serve(dialect: AnswerDialect, req: Request, rt: Runtime, uploads: ExitStack | None = None) -> None:
    # What `async with Exchange(...)` does, spelled out in one coroutine: each await
    # saved is ~0.3 µs on the hottest path (bench/, docs/performance.md).
    x = Exchange(req, rt, dialect)
    try:
        x.key = key = rt.keys.authenticate(req.headers)
        if dialect.form:    # multipart/form-data (image edits, audio uploads): the dialect's bounded reader
            assert uploads is not None, "a form dialect is served by serve_form"
            body, inbound = await dialect.read_form(req, max(rt.max_body, dialect.form_max_body), uploads)
        else:
            body = await req.body(rt.max_body)
            if len(body) >= protocol.ESTIMATE_FROM:
                await protocol.check_parse_work(body, rt.max_parse_ms)
            inbound = dialect.parse(body)
        served, strategy = rt.resolve(key, inbound.model, dialect.kind)
        x.model = served.name
        if inbound.prepare is not None:
            await inbound.prepare(x)
            body = inbound.send or body
        x.data = inbound.data
        x.admitted(await rt.limiter.admit(key, served, inbound.data, body),
                   TargetGate(rt.limiter, inbound.data, body) if served.gated else None)
        cache_as = None
        if served.cache is not None and dialect.cacheable and inbound.answer is None:
            read, write = cache.directives(req.headers)
            lookup = cache.lookup_key(served.cache, key.id, served.name, dialect.op, inbound.data)
            found = None
            if read:
                try:
                    found = await rt.store.cache.get(lookup)
                except StoreDown:
                    pass            # a cache that can't answer is a miss
            if found is not None:
                CACHE_HITS.inc((served.name,))
                await _from_cache(x, cache.unpack(found), inbound)
                return
            CACHE_MISSES.inc((served.name,))
            if write and not inbound.stream:
                cache_as = lookup
        call = Call(dialect.op, body, inbound.data, served.name, inbound.stream, req.id.decode(),
                    native=inbound.native)
        outcome = x.routed(await router.send(served, call, strategy, x.gate))
        if served.cache is not None:
            x.headers.append((CACHE, b"miss"))
        reply = outcome.reply
        answer = inbound.answer
        if reply.chunks is None:
            x.let_go_of_target()
            x.priced(reply.usage)
            if answer is not None:
                await req.respond(200, await answer.whole(x, reply), x.answering(200), answer.content_type)
                return
            await req.respond(200, reply.body, x.answering(200), reply.content_type)
            if cache_as is not None and served.cache is not None:
                try:
                    await rt.store.cache.put(cache_as, cache.pack(x.provider, reply.body, x.usage),
                                             served.cache.ttl_s)
                except StoreDown:
                    pass
            return
        events = 0
        translated = None
        try:
            if answer is not None:
                translated = answer.stream(x, reply, outcome.first_chunk or b"")
                events = await x.stream(await anext(translated), translated, answer.stream_content_type,
                                        served.timeout_s, answer.stream_error, reply)
            else:
                events = await x.stream(outcome.first_chunk or b"", reply.chunks, reply.content_type,
                                        served.timeout_s, reply=reply)
        finally:
            x.let_go_of_target()
            if translated is not None:
                await translated.aclose()
            await reply.aclose()
            x.priced(reply.usage or _streamed_usage(call, events))
            if answer is not None:
                x.cost += answer.streamed_cost(x, reply)
    except ApiError as e:
        await x.refuse(e)
    except ClientGone:
        x.status = _CLIENT_GONE
        raise
    finally:
        await x.end()


async def _from_cache(x: Exchange, hit: cache.Cached, inbound: Inbound) -> None:
    """A hit: no upstream call and no cost, counted as a request served from the cache."""
    x.provider, x.cache_hit, x.status = hit.provider, True, 200
    x.headers += [(CACHE, b"hit"), (PROVIDER, hit.provider.encode()), (ATTEMPTS, b"0")]
    if inbound.stream:
        await x.req.start_stream([*x.headers, (COST_USD, b"0"), (OVERHEAD_MS, x._overhead())])
        await x.req.send_chunk(x.dialect.replay(hit.body, inbound.data))
        await x.req.end_stream()
    else:
        await x.req.respond(200, hit.body, x.answering(200))


def _streamed_usage(call: Call, events: int) -> Usage:
    """What a stream that ended without a usage record (the client left, or the
    provider sends none) is charged: the prompt at ~4 bytes a token, and a token
    per content event relayed (role and finish events aside)."""
    return Usage(len(call.body) // 4, max(0, events - 2))
