"""The spans a traced request makes, in OpenTelemetry's GenAI conventions: one
SERVER span per request (`chat gpt-4o`), and under it one CLIENT span per
upstream attempt, whose W3C traceparent the upstream call carries. A client's
own `traceparent` (and `tracestate`) makes the request span its child, and its
`tracestate` goes on upstream unchanged beside each attempt's traceparent.

Spans are batched and sent to the collector over OTLP/HTTP from the SDK's own
thread, so the event loop only builds them. Loaded only when tracing is on
(gateway/telemetry/__init__.py).
"""
from __future__ import annotations

import threading
from collections.abc import Awaitable
from contextvars import Token
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, get_current_span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.spend import NANO
from gateway.telemetry import REQUEST
from providers import sse
from providers.errors import ProviderError
from providers.trace import TRACEPARENT, TRACESTATE

if TYPE_CHECKING:      # annotations only: these reach this module (the exchange and the router call it)
    from gateway.asgi import Request
    from gateway.config.schema import TelemetryConfig
    from gateway.errors import ApiError
    from gateway.exchange import Exchange
    from gateway.router import Outcome
    from gateway.routes import Target

_PROPAGATOR = TraceContextTextMapPropagator()
_MAX_TRACESTATE = 512       # bytes: what W3C asks every vendor to pass on; a longer one is dropped
_CLOSE_WAIT_S = 3.0         # how long a shutdown waits for the last spans to reach the collector
_NO_PARENT = Context()      # a new trace: never whatever OpenTelemetry's own current context holds

# `gen_ai.provider.name` where the conventions name the provider otherwise than its `type:` here.
_GENAI_PROVIDER = {"azure_openai": "azure.ai.openai", "bedrock": "aws.bedrock", "gemini": "gcp.gemini",
                   "mistral": "mistral_ai", "xai": "x_ai"}


class Tracing:
    """The process's tracer: its spans sampled, batched and sent to the collector."""

    def __init__(self, cfg: TelemetryConfig) -> None:
        # A provider of our own, not the global one: each app (tests run several) sends where it was told.
        # The app shuts it down (close); at exit, a collector that is down must not hold the process up.
        self._provider = TracerProvider(resource=Resource.create({SERVICE_NAME: cfg.service_name}),
                                        sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)),
                                        shutdown_on_exit=False)
        # Batch delay, queue and batch sizes come from the SDK's OTEL_BSP_* environment variables.
        self._provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=cfg.otlp_endpoint, headers=dict(cfg.headers))))
        self._tracer = self._provider.get_tracer("gateway")

    def request(self, req: Request, op: str) -> RequestSpan:
        """The span of a request now starting; the current request's until it ends."""
        headers = req.headers
        parent = _NO_PARENT
        state = None
        traceparent = headers.get(b"traceparent")
        if traceparent is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")}
            if b"tracestate" in headers:
                state = _tracestate(req.scope["headers"])
                if state is not None:
                    carrier["tracestate"] = state
            parent = _PROPAGATOR.extract(carrier, _NO_PARENT)    # one that does not parse starts a new trace
            if not get_current_span(parent).get_span_context().is_valid:
                state = None        # W3C: a tracestate travels only with the traceparent it came with
        span = self._tracer.start_span(op, parent, SpanKind.SERVER, {
            "gen_ai.operation.name": op, "http.request.method": req.method, "url.path": req.path,
            "gateway.request_id": req.id.decode()})
        return RequestSpan(self._tracer, span, op, state)

    def close(self, wait_s: float = _CLOSE_WAIT_S) -> None:
        """Send what is still batched and stop, waiting at most `wait_s`: the SDK would retry a
        collector that is down for its whole export timeout (blocks: call it off the event loop)."""
        closing = threading.Thread(target=self._provider.shutdown, name="telemetry-close", daemon=True)
        closing.start()
        closing.join(wait_s)


class RequestSpan:
    """One request's SERVER span, the parent of its attempts' CLIENT spans."""
    __slots__ = ("_tracer", "span", "_op", "_parent", "_state", "_token", "_error", "_answered_by")

    def __init__(self, tracer: Tracer, span: Span, op: str, state: str | None = None) -> None:
        self._tracer = tracer
        self.span = span
        self._op = op
        self._parent = set_span_in_context(span, _NO_PARENT)
        self._state = state         # the client's tracestate, for each attempt to pass on
        self._token: Token[RequestSpan | None] = REQUEST.set(self)
        self._error: str | None = None
        self._answered_by: str | None = None     # the model the answering upstream named

    async def attempt(self, answer: Awaitable[Outcome], target: Target, op: str, number: int) -> Outcome:
        """`answer` (one attempt at `target`) awaited inside a CLIENT span, with the
        span's traceparent (and the client's tracestate) set for the upstream call to carry."""
        provider = target.provider
        span = self._tracer.start_span(f"{op} {target.model}", self._parent, SpanKind.CLIENT, {
            "gen_ai.operation.name": op, "gen_ai.request.model": target.model,
            **_provider_names(provider.options.type), "gateway.provider": provider.name,
            "gateway.attempt": number})
        ctx = span.get_span_context()
        sent = TRACEPARENT.set(f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}")
        passed = TRACESTATE.set(self._state)
        try:
            outcome = await answer
            if span.is_recording():
                model = _response_model(outcome)
                if model is not None:
                    self._answered_by = model
                    span.set_attribute("gen_ai.response.model", model)
        except ProviderError as e:
            if span.is_recording():
                e.scrubbed(provider.secrets)     # as the router does next: the span shows what the client may see
                span.set_attribute("error.type", type(e).__name__)
                if e.upstream_status is not None:
                    span.set_attribute("http.response.status_code", e.upstream_status)
                span.set_status(Status(StatusCode.ERROR, e.message))
            raise
        except BaseException as e:     # cancelled (the client left), or the gateway's own fault
            span.set_attribute("error.type", type(e).__name__)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            TRACESTATE.reset(passed)
            TRACEPARENT.reset(sent)
            span.end()
        return outcome

    def refused(self, err: ApiError) -> None:
        """The error the request was answered with (its `error.type`)."""
        self._error = err.code or err.type

    def end(self, x: Exchange) -> None:
        """The request's end: what it learned on its way, as attributes."""
        try:
            REQUEST.reset(self._token)
        except ValueError:      # ended in another context than it began in (a bug): never let it stop the end
            REQUEST.set(None)
        span = self.span
        if span.is_recording():
            attributes: dict[str, Any] = {"http.response.status_code": x.status, "gateway.attempts": x.attempts,
                                          "gateway.cost_usd": x.cost / NANO}
            if x.model:
                span.update_name(f"{self._op} {x.model}")
                attributes["gen_ai.request.model"] = x.model
            if self._answered_by is not None:
                attributes["gen_ai.response.model"] = self._answered_by
            if x.key is not None:
                attributes["gateway.key.id"] = x.key.id        # stable, and says nothing of the secret
                attributes["gateway.key.name"] = x.key.name
            if x.provider:
                attributes["gateway.provider"] = x.provider
            if x.target is not None:
                attributes.update(_provider_names(x.target.provider.options.type))
            if x.cache_hit:
                attributes["gateway.cache_hit"] = True
            usage = x.usage
            if usage is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
                attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
            if self._error is not None or x.status >= 400:
                attributes["error.type"] = self._error or str(x.status)
            span.set_attributes(attributes)
            if x.status >= 500:      # a server span's 4xx is the client's error, not the span's
                span.set_status(Status(StatusCode.ERROR))
        span.end()


def _tracestate(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The client's tracestate as it came (several header lines joined, as W3C reads them);
    None when empty, longer than W3C asks anyone to pass on, or not ASCII (W3C allows none)."""
    lines = [value for name, value in headers if name == b"tracestate"]
    state = lines[0] if len(lines) == 1 else b",".join(lines)
    if not state.strip() or len(state) > _MAX_TRACESTATE or not state.isascii():
        return None
    return state.decode("ascii")


def _response_model(outcome: Outcome) -> str | None:
    """The model the upstream says answered: a whole answer's `model`, as its adapter read it
    with the parse it does anyway; else the `model` of a stream's first event, parsed here
    (tracing is on and this span kept), in OpenAI's chunk, the Responses API's
    `response.created` or Anthropic's `message_start`."""
    reply = outcome.reply
    if reply.model is not None or outcome.first_chunk is None:
        return reply.model
    data = sse.first_data(outcome.first_chunk)
    if data is None:
        data = next((d for _, d in sse.events(outcome.first_chunk)), None)
    try:
        event = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    inner = event.get("response") or event.get("message")
    model = event.get("model") or (inner.get("model") if isinstance(inner, dict) else None)
    return model if isinstance(model, str) and model else None


def _provider_names(provider_type: str) -> dict[str, str]:
    """`gen_ai.provider.name`, and `gen_ai.system` that older conventions (and backends) read."""
    name = _GENAI_PROVIDER.get(provider_type, provider_type)
    return {"gen_ai.provider.name": name, "gen_ai.system": name}
