"""Sending one call along a model's route: order the targets, skip open
circuits, fail over on retryable failures, all within the request's deadline.

A stream counts as answered once its first chunk arrived; until then, it
fails over like any other call.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import NamedTuple

from gateway.errors import ApiError, from_provider
from gateway.limits import Gate, TargetFull, Ticket
from gateway.metrics import FAILOVERS, RETRIES
from gateway.routes import ServedModel, Target
from gateway.telemetry import REQUEST
from providers.base import AUDIO_OPS, Call, Provider, Reply
from providers.errors import ProviderError, RateLimited, UpstreamFault, UpstreamTimeout
from providers.redaction import scrub, scrub_bytes
from providers.ticker import deadline

log = logging.getLogger("gateway.router")

_BACKOFF_S = 0.05    # before trying a target again in the same request, doubled each round
_MOST_CODE = 64      # an error code longer than this is not a code


class Attempt(NamedTuple):
    """One upstream attempt, for the request log: made only once an attempt failed."""
    provider: str
    model: str              # the upstream model
    status: int | None      # the upstream's HTTP status (200: answered), None where the failure has none
    error: str | None       # the failure's code (or type); never its message, which may quote the request
    seconds: float


@dataclass(slots=True)
class Outcome:
    reply: Reply
    target: Target
    attempts: int
    upstream_s: float            # time spent waiting on providers, all attempts together
    first_chunk: bytes | None = None
    target_ticket: Ticket | None = None   # the charge against the provider's own limits, to settle
    # Every attempt, once one failed; None when the first answered (that one is `target`, for all of `upstream_s`).
    attempt_log: list[Attempt] | None = None

    def release(self) -> None:
        """The answer has been delivered (or abandoned): the target is no longer busy."""
        self.target.stats.in_flight -= 1


class RouteFailed(ApiError):
    """No target answered; carries the attempts that were made."""

    def __init__(self, error: ApiError, attempts: int, upstream_s: float,
                 attempt_log: list[Attempt] | None = None) -> None:
        super().__init__(error.status, error.message, type=error.type, param=error.param,
                         code=error.code, headers=error.headers)
        self.attempts = attempts
        self.upstream_s = upstream_s
        self.upstream_status = error.upstream_status
        self.attempt_log = attempt_log


async def send(model: ServedModel, call: Call, strategy: str | None = None,
               gate: Gate | None = None, only: Callable[[Target], bool] | None = None) -> Outcome:
    """`only`: targets that can serve this call at all (others are passed over
    without counting as an attempt, e.g. a video size one target lacks)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + model.timeout_s
    order = model.plan(strategy)
    allowed = 1 + model.retries
    attempts = 0
    upstream_s = 0.0
    last: ProviderError | None = None
    tried: dict[int, int] = {}
    attempt_log: list[Attempt] | None = None     # made at the first failure: the common case allocates nothing
    trace = REQUEST.get()       # the request's span, when tracing is on: each attempt gets one under it

    # Walk the order, wrapping round while retries remain; open circuits are skipped.
    for i in range(len(order) * allowed):
        if attempts == allowed:
            break
        target = order[i % len(order)]
        if only is not None and not only(target):
            continue
        now = loop.time()
        if now >= deadline:
            last = UpstreamTimeout(f"no answer for '{model.name}' within {model.timeout_s:g}s",
                                   provider=target.provider.name)
            break
        stats = target.stats
        if not stats.breaker.allow(now):
            continue
        charged = None
        if gate is not None:
            try:
                charged = await gate.admit(target.provider.name, target.provider.options.limits)
            except TargetFull as e:
                stats.breaker.abandon()     # not tried: no verdict on its health
                last = RateLimited(str(e), retry_after=e.retry_after_s, provider=target.provider.name)
                continue
        rounds = tried.get(id(target), 0)
        if rounds:
            pause = min(_BACKOFF_S * 2 ** (rounds - 1), deadline - now)
            await asyncio.sleep(pause)
            upstream_s += pause     # waiting on a target to recover is not the gateway's own work
        tried[id(target)] = rounds + 1
        if attempts:        # the one before failed: this is a retry of a target or a move to another
            (RETRIES if rounds else FAILOVERS).inc((model.name,))
        attempts += 1

        budget = deadline - loop.time()
        if model.attempt_timeout_s is not None:
            budget = min(budget, model.attempt_timeout_s)
        call.model = target.model
        started = time.perf_counter()    # not loop.time(): uvloop's clock ticks in whole ms
        stats.in_flight += 1
        try:
            attempt = _attempt(target, call, budget)
            outcome = await (attempt if trace is None else trace.attempt(attempt, target, call.op, attempts))
        except ProviderError as e:
            e.scrubbed(target.provider.secrets)     # before it reaches the client, the log or last_error
            stats.in_flight -= 1
            if charged is not None and gate is not None:
                await gate.release(charged, None)
            spent = time.perf_counter() - started
            upstream_s += spent
            if attempt_log is None:
                attempt_log = []
            attempt_log.append(_failed(target, e, spent))
            if not e.retryable:
                stats.breaker.success()     # the target is healthy; the request was not
                raise RouteFailed(from_provider(e), attempts, upstream_s, attempt_log) from None
            stats.breaker.failure(loop.time())
            stats.record_failure(e.message)
            log.warning("attempt %d for %s via %s failed: %s", attempts, model.name, target.id, e.message)
            last = e
            continue
        except BaseException:
            stats.in_flight -= 1
            stats.breaker.abandon()
            if charged is not None and gate is not None:
                await gate.release(charged, None)
            raise
        elapsed = time.perf_counter() - started
        stats.breaker.success()
        stats.record_latency(elapsed)
        outcome.attempts = attempts
        outcome.upstream_s = upstream_s + elapsed
        outcome.target_ticket = charged
        if attempt_log is not None:
            attempt_log.append(Attempt(target.provider.name, target.model, 200, None, elapsed))
            outcome.attempt_log = attempt_log
        return outcome

    if last is None:
        raise RouteFailed(_all_open(model, loop.time()), attempts, upstream_s, attempt_log)
    raise RouteFailed(from_provider(last), attempts, upstream_s, attempt_log)


def _failed(target: Target, e: ProviderError, seconds: float) -> Attempt:
    """A failed attempt as the request log keeps it: the code only (an upstream's own code may echo
    what it was sent, so the provider's secrets are hidden in it too)."""
    code = e.code or e.type
    if code:
        code = scrub(code, target.provider.secrets)[:_MOST_CODE]
    return Attempt(target.provider.name, target.model, e.upstream_status, code or None, seconds)


# The provider method each operation calls (chat's is called directly, first: the hot path).
_METHOD = {"embeddings": "embeddings", "images": "images", "image_edits": "images",
           **dict.fromkeys(AUDIO_OPS, "audio")}


async def _attempt(target: Target, call: Call, budget: float) -> Outcome:
    provider = target.provider
    try:
        with deadline(budget):      # checked by the process's ticker: no timer armed per attempt
            if call.op == "video":
                assert call.video is not None
                spec = dataclasses.replace(call.video, model=target.model)
                if spec.source_provider != provider.name:
                    spec.source_state = None    # another provider's ids mean nothing here
                # How this target makes it (the routes kept only targets that can: gateway/video/submit.py)
                spec.fit = provider.video_plan(spec.op, spec.width, spec.height, spec.seconds)
                state = await provider.video_submit(spec if provider.fits_itself else spec.generated())
                return Outcome(Reply(extra={"state": state, "fit": spec.fit}), target, 0, 0.0)
            reply = await (provider.chat(call) if call.op == "chat" else getattr(provider, _METHOD[call.op])(call))
            first = None
            if reply.chunks is not None:
                try:
                    first = await anext(reply.chunks)
                except StopAsyncIteration:
                    await reply.aclose()
                    raise UpstreamFault(f"provider '{provider.name}' sent an empty stream",
                                        provider=provider.name) from None
                except BaseException:
                    await reply.aclose()
                    raise
                if provider.secret_bytes:
                    first = scrub_bytes(first, provider.secret_bytes)
                    reply.chunks = _Scrubbed(reply.chunks, provider)
            elif provider.secret_bytes:
                reply.body = scrub_bytes(reply.body, provider.secret_bytes)
    except TimeoutError:
        raise UpstreamTimeout(f"provider '{provider.name}' did not answer within {budget:.3g}s",
                              provider=provider.name) from None
    return Outcome(reply, target, 0, 0.0, first)


class _Scrubbed:
    """A stream after its first chunk, with the provider's secrets hidden in
    what it relays (an upstream's own error events) and in the failure that
    ends it (the dialect's error event, the relay's log line). An iterator that
    passes on its stream's `drained` (gateway/relay.py), not a generator."""
    __slots__ = ("chunks", "provider", "drained")

    def __init__(self, chunks: AsyncIterator[bytes], provider: Provider) -> None:
        self.chunks, self.provider = chunks, provider
        self.drained = getattr(chunks, "drained", None)

    def __aiter__(self) -> _Scrubbed:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await anext(self.chunks)
        except ProviderError as e:
            e.scrubbed(self.provider.secrets)
            raise
        return scrub_bytes(chunk, self.provider.secret_bytes)

    async def aclose(self) -> None:
        closer = getattr(self.chunks, "aclose", None)
        if closer is not None:
            await closer()


def _all_open(model: ServedModel, now: float) -> ApiError:
    wait = min((t.stats.breaker.retry_in(now) for t in model.targets), default=1.0)
    return ApiError(503, f"every target of '{model.name}' is cooling down after failures; retry shortly",
                    type="server_error", code="no_healthy_target",
                    headers=[(b"retry-after", str(max(1, round(wait))).encode())])
