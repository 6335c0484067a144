"""Bedrock's failures as the gateway's failure kinds (pure): HTTP error
answers (`x-amzn-ErrorType` + `{"message"}`) and exception frames in a stream."""
from __future__ import annotations

from collections.abc import Mapping

import orjson

from providers import errors
from providers.http import retry_after

_RATE = {"ThrottlingException", "ServiceQuotaExceededException"}
_AUTH = {"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
         "IncompleteSignatureException", "MissingAuthenticationTokenException", "ExpiredTokenException",
         "InvalidClientTokenId", "SignatureDoesNotMatch"}
_FAULT = {"InternalServerException", "ServiceUnavailableException", "ModelNotReadyException",
          "ModelErrorException", "ModelStreamErrorException"}
_CONTEXT = ("too long", "context length", "context window", "too many total text bytes",
            "exceed context limit", "maximum context")


def parse_error(status: int, body: bytes, headers: Mapping[str, str], *, provider: str,
                secrets: tuple[str, ...] = ()) -> errors.ProviderError:
    """The failure kind of a non-2xx answer."""
    name, message = _fields(body)
    name = _short(_header(headers, "x-amzn-errortype")) or name
    return classify(name, _clean(message, secrets) or f"HTTP {status}", provider=provider, status=status,
                    retry_after=retry_after(headers))


def stream_exception(event: str, payload: bytes, *, provider: str,
                     secrets: tuple[str, ...] = ()) -> errors.ProviderError:
    """An exception frame (`:exception-type`, e.g. throttlingException) inside a stream."""
    _, message = _fields(payload)
    name = event[:1].upper() + event[1:]
    return classify(name, _clean(message, secrets) or name, provider=provider, status=None)


def classify(name: str, message: str, *, provider: str, status: int | None,
             retry_after: float | None = None) -> errors.ProviderError:
    said = f"{name}: {message}" if name else message
    if name in _RATE:
        return errors.RateLimited(said, retry_after=retry_after, provider=provider, upstream_status=status)
    if name in _AUTH:
        return errors.AuthFailed(f"provider '{provider}' rejected the gateway's credentials: {said}",
                                 provider=provider, upstream_status=status)
    if name == "ModelTimeoutException":
        return errors.UpstreamTimeout(f"provider '{provider}' timed out: {message}", provider=provider,
                                      upstream_status=status)
    if name in _FAULT:
        return errors.UpstreamFault(f"provider '{provider}' failed: {said}", provider=provider,
                                    upstream_status=status)
    if name == "ResourceNotFoundException":
        return errors.BadRequest(message, status=404, param="model", code="model_not_found",
                                 provider=provider, upstream_status=status)
    if name == "ValidationException":
        lowered = message.lower()
        if any(p in lowered for p in _CONTEXT):
            return errors.BadRequest(message, param="messages", code="context_length_exceeded",
                                     provider=provider, upstream_status=status)
        return errors.BadRequest(message, provider=provider, upstream_status=status)
    if status is None:                       # an exception frame of a kind this version does not know
        return errors.UpstreamFault(f"provider '{provider}' failed mid-stream: {said}", provider=provider)
    return errors.from_status(status, message, provider=provider, retry_after=retry_after)


def _fields(body: bytes) -> tuple[str, str]:
    """(error name from `__type`, message) of an error body; AWS spells both ways."""
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return "", errors.body_text(body)
    if not isinstance(doc, dict):
        return "", ""
    message = doc.get("message") or doc.get("Message") or ""
    return _short(str(doc.get("__type") or "")), message if isinstance(message, str) else str(message)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:       # aiohttp's headers ignore case; a plain mapping may not
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value


def _short(name: str) -> str:
    """`ThrottlingException:http://internal.amazon.com/coral/...` or
    `com.amazon.coral.service#UnrecognizedClientException` -> the bare name."""
    return name.partition(":")[0].rpartition("#")[2].strip()


def _clean(message: str, secrets: tuple[str, ...]) -> str:
    # A signature mismatch echoes the canonical request (session token included)
    # after a blank line: only the first paragraph is the message.
    message = message.partition("\n\n")[0].strip()
    for s in secrets:
        if s:
            message = message.replace(s, "***")
    return message
