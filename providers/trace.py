"""The W3C trace context an upstream call carries: set by the gateway's tracing
(gateway/telemetry/spans.py) for the attempt being made, read by the upstream
client, which sends them as the `traceparent` and `tracestate` headers. Unset
(tracing off): nothing is sent."""
from __future__ import annotations

from contextvars import ContextVar

TRACEPARENT: ContextVar[str | None] = ContextVar("traceparent", default=None)
# The client's own `tracestate`, passed on unchanged beside the attempt's traceparent (only with one).
TRACESTATE: ContextVar[str | None] = ContextVar("tracestate", default=None)
