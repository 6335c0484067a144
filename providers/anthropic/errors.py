"""Anthropic's error bodies and stream error events, as the failure kinds the
router decides on.

Body: {"type": "error", "error": {"type": "...", "message": "..."}, "request_id": "..."}.
The error type says more than the status (a stream's error event has no
status at all), so it is read first and the status is the fallback.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import orjson

from providers import errors
from providers.http import retry_after

# Phrases Anthropic uses for a prompt over the model's window (400 invalid_request_error).
_CONTEXT_PHRASES = ("prompt is too long", "exceed context limit")
# Account out of credit: the gateway's fault, not the request's (some answers say it with a 400).
_BILLING_PHRASES = ("credit balance is too low",)


def parse_error(status: int, body: bytes, headers: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    """The failure kind for a non-2xx answer."""
    type_, message = error_fields(body)
    return failure(type_, message or f"HTTP {status}", provider=provider, secret=secret, status=status,
                   retry_after=retry_after(headers))


def error_fields(body: bytes) -> tuple[str | None, str]:
    """(error type, message) from an error body or a stream's error event."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        # e.g. the HTML page a proxy answers 413 with
        return None, errors.body_text(body)
    err: Any = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict):
        return None, ""
    message = err.get("message")
    type_ = err.get("type")
    return (type_ if isinstance(type_, str) else None,
            message if isinstance(message, str) else orjson.dumps(message).decode() if message else "")


class _Common(TypedDict):
    """What every failure kind below is told."""
    provider: str
    upstream_status: int | None


def failure(type_: str | None, message: str, *, provider: str, secret: str = "", status: int | None = None,
            retry_after: float | None = None) -> errors.ProviderError:
    if secret and secret in message:
        message = message.replace(secret, "***")
    kw: _Common = {"provider": provider, "upstream_status": status}
    lowered = message.lower()
    if type_ == "billing_error" or any(p in lowered for p in _BILLING_PHRASES):
        return errors.AuthFailed(f"provider '{provider}' refused the gateway's account (billing): {message}",
                                 **kw)
    if type_ == "rate_limit_error" or status == 429:
        return errors.RateLimited(message, retry_after=retry_after, **kw)
    if type_ == "overloaded_error" or status == 529:
        # Anthropic short of capacity for everyone: the provider's fault, retryable, not the
        # client's rate. Another target may well answer.
        return errors.UpstreamFault(f"provider '{provider}' is overloaded: {message}", **kw)
    if type_ == "timeout_error" or status == 504:
        return errors.UpstreamTimeout(f"provider '{provider}' timed out: {message}", **kw)
    if type_ in ("authentication_error", "permission_error") or status in (401, 403):
        return errors.AuthFailed(f"provider '{provider}' rejected the gateway's credentials: {message}", **kw)
    if type_ == "api_error" or (status is not None and status >= 500):
        return errors.UpstreamFault(f"provider '{provider}' answered {status or 'an error'}: {message}", **kw)
    if type_ == "not_found_error" or status == 404:
        return errors.BadRequest(message, status=404, param="model", code="model_not_found", **kw)
    if type_ == "request_too_large" or status == 413:
        return errors.BadRequest(message, status=413, code="request_too_large", **kw)
    if any(p in lowered for p in _CONTEXT_PHRASES):
        return errors.BadRequest(message, param="messages", code="context_length_exceeded", **kw)
    if type_ == "invalid_request_error" or (status is not None and 400 <= status < 500):
        return errors.BadRequest(message, status=status if status and 400 <= status < 500 else 400, **kw)
    # An error type this adapter does not know yet: treat it as the provider's fault.
    return errors.UpstreamFault(f"provider '{provider}' failed: {type_ or 'error'}: {message}", **kw)
