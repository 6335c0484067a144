"""The W3C trace context an upstream call carries: set by the gateway's tracing
(gateway/telemetry.py) for the attempt being made, read by the upstream client,
which sends it as the `traceparent` header. Unset (tracing off): nothing is sent."""
from __future__ import annotations

from contextvars import ContextVar

TRACEPARENT: ContextVar[str | None] = ContextVar("traceparent", default=None)
