"""Gemini's error bodies read as failure kinds (pure).

Gemini answers `{"error": {"code", "message", "status", "details": [...]}}`
(google.rpc.Status). Its own quirks: an invalid API key is a 400
INVALID_ARGUMENT whose details say API_KEY_INVALID, and a rate limit tells
how long to wait in a `google.rpc.RetryInfo` detail rather than a header.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers import errors
from providers.http import retry_after

_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED",
                          "API_KEY_HTTP_REFERRER_BLOCKED", "API_KEY_IP_ADDRESS_BLOCKED"})
_CONTEXT_MARKERS = ("input token count", "exceeds the maximum number of tokens")


def parse_error(status: int, body: bytes, headers: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    """The failure kind for a non-2xx answer (or an error event inside a stream)."""
    err = _error_object(body)
    return from_error(err, status, headers, provider=provider, secret=secret)


def from_error(err: dict[str, Any], status: int, headers: Mapping[str, str], *, provider: str,
               secret: str = "") -> errors.ProviderError:
    raw_code, raw_state, raw_message = err.get("code"), err.get("status"), err.get("message")
    code = raw_code if isinstance(raw_code, int) else status
    state = raw_state if isinstance(raw_state, str) else ""
    message = raw_message if isinstance(raw_message, str) else ""
    if not message:
        message = f"HTTP {code}" + (f" {state}" if state else "")
    if secret:
        message = message.replace(secret, "***")
    details = [d for d in err.get("details") or [] if isinstance(d, dict)]

    if code == 429 or state == "RESOURCE_EXHAUSTED":
        wait = _retry_delay(details)
        return errors.RateLimited(message, retry_after=wait if wait is not None else retry_after(headers),
                                  provider=provider, upstream_status=code)
    # FAILED_PRECONDITION: the account may not use the API from here (location, billing),
    # a fault of the gateway's set-up that another target may not share.
    if (code in (401, 403) or state in ("UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION")
            or _key_refused(details)):
        return errors.AuthFailed(f"provider '{provider}' rejected the gateway's credentials: {message}",
                                 provider=provider, upstream_status=code)
    if code == 504 or state == "DEADLINE_EXCEEDED":
        return errors.UpstreamTimeout(f"provider '{provider}' timed out: {message}", provider=provider,
                                      upstream_status=code)
    if 400 <= code < 500:
        lowered = message.lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return errors.BadRequest(message, param="messages", code="context_length_exceeded",
                                     provider=provider, upstream_status=code)
        return errors.BadRequest(message, status=code, code="model_not_found" if code == 404 else None,
                                 provider=provider, upstream_status=code)
    return errors.UpstreamFault(f"provider '{provider}' answered {code}: {message}", provider=provider,
                                upstream_status=code)


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = errors.body_text(body)
        return {"message": text} if text else {}
    if isinstance(doc, list) and doc:       # the non-SSE stream wraps errors in an array
        doc = doc[0]
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {}


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a RetryInfo detail: a protobuf duration such as "30s" or "45.837906927s"."""
    for d in details:
        if d.get("@type", "").endswith("google.rpc.RetryInfo"):
            delay = d.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def _key_refused(details: list[dict[str, Any]]) -> bool:
    return any(d.get("@type", "").endswith("google.rpc.ErrorInfo") and d.get("reason") in _KEY_REASONS
               for d in details)
