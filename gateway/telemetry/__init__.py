"""Whether this process sends traces, and the request being traced now.

Tracing is optional (`telemetry.otlp_endpoint`, docs/telemetry.md) and its
packages are an extra: this module imports nothing from OpenTelemetry, so with
tracing off none of it is loaded and a request pays one attribute check
(`rt.tracing is None`) and, per upstream attempt, one context-variable read.
`spans.py` holds everything that speaks OpenTelemetry, loaded by `start`.
"""
from __future__ import annotations

from contextvars import ContextVar
from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # annotations only: spans.py is loaded when tracing is on
    from gateway.config.schema import TelemetryConfig
    from gateway.telemetry.spans import RequestSpan, Tracing

# The request span of the request this task serves, for the router's attempt spans to hang under.
REQUEST: ContextVar[RequestSpan | None] = ContextVar("gateway_request_span", default=None)

# What the `telemetry` extra installs: the module each package provides.
_PACKAGES = {"opentelemetry-sdk": "opentelemetry.sdk.trace",
             "opentelemetry-exporter-otlp-proto-http": "opentelemetry.exporter.otlp.proto.http.trace_exporter"}


def start(cfg: TelemetryConfig) -> Tracing | None:
    """The process's tracing, sending to the configured collector; None when tracing is off."""
    if not cfg.otlp_endpoint:
        return None
    from gateway.telemetry.spans import Tracing  # late: an optional extra, loaded only when tracing is on
    return Tracing(cfg)


def missing_packages() -> list[str]:
    """The `telemetry` extra's packages that are not installed (looked for, not imported)."""
    missing = []
    for package, module in _PACKAGES.items():
        try:
            found = find_spec(module) is not None
        except ModuleNotFoundError:    # a parent package is missing
            found = False
        if not found:
            missing.append(package)
    return missing
