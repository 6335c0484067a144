"""What kind of failure an upstream call was.

Adapters raise these; the router decides on the class alone (fail over or
return), never by reading messages. `retryable` means "another attempt, on
this or another target, may succeed".
"""
from __future__ import annotations

from collections.abc import Sequence

from providers.redaction import scrub

# The longest message a client, a log line or an admin view gets, cut only
# after secrets are hidden (a secret cut in two would no longer be found).
MESSAGE_LIMIT = 600
# The longest type, param or code an upstream's error may pass on (OpenAI's are a few words).
FIELD_LIMIT = 128
# How much of a non-JSON error body adapters keep: more than MESSAGE_LIMIT, so
# a secret that straddles the adapter's cut is never inside what is shown.
_BODY_TEXT_LIMIT = 4096


class ProviderError(Exception):
    retryable = True
    status = 502              # what the client sees if this is the last failure
    type = "server_error"
    code: str | None = "upstream_error"

    def __init__(self, message: str, *, provider: str = "", param: str | None = None,
                 code: str | None = None, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.param = param
        self.upstream_status = upstream_status
        if code is not None:
            self.code = code

    def scrubbed(self, secrets: Sequence[str]) -> ProviderError:
        """Hide `secrets` in the message, then cut it to MESSAGE_LIMIT: done
        where a failure leaves its provider for the gateway (router, video runner).
        The upstream's own type, param and code reach the client too: hidden and
        cut (to FIELD_LIMIT) the same way."""
        message = scrub(self.message, secrets)
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT - 1] + "…"
        self.message = message
        self.args = (message,)
        for name in ("type", "param", "code"):
            value = self.__dict__.get(name)      # set from the upstream's answer (a class's own stays as it is)
            if isinstance(value, str):
                setattr(self, name, scrub(value, secrets)[:FIELD_LIMIT])
        return self


class UpstreamFault(ProviderError):
    """5xx, malformed answer, or the connection broke: the provider's problem."""


class ConnectionFailed(UpstreamFault):
    """The provider could not be reached at all (refused, DNS, TLS)."""
    code = "upstream_unreachable"


class UpstreamTimeout(ProviderError):
    status = 504
    code = "upstream_timeout"


class RateLimited(ProviderError):
    """The provider said 429 (or its own equivalent, e.g. overloaded 529)."""
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class AuthFailed(ProviderError):
    """The provider refused the gateway's own credentials: a config fault, so
    another target may still work, but the client's request was fine."""
    code = "upstream_auth_failed"


class BadRequest(ProviderError):
    """The request itself is at fault (4xx other than auth/429): returned as is."""
    retryable = False
    type = "invalid_request_error"
    code = None

    def __init__(self, message: str, *, status: int = 400, type: str | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.status = status
        if type:
            self.type = type


def body_text(body: bytes) -> str:
    """A non-JSON error body (a proxy's HTML page) as message text; cut short
    to MESSAGE_LIMIT only once secrets are hidden (`ProviderError.scrubbed`)."""
    return body[:_BODY_TEXT_LIMIT].decode("utf-8", "replace").strip()


def from_status(status: int, message: str, *, provider: str, retry_after: float | None = None,
                type: str | None = None, param: str | None = None, code: str | None = None) -> ProviderError:
    """The failure kind an HTTP status stands for, for OpenAI-like providers."""
    if status == 429:
        return RateLimited(message, retry_after=retry_after, provider=provider, upstream_status=status)
    if status in (401, 403):
        return AuthFailed(f"provider '{provider}' rejected the gateway's credentials: {message}",
                          provider=provider, upstream_status=status)
    if status in (408,):
        return UpstreamTimeout(message, provider=provider, upstream_status=status)
    if 400 <= status < 500:
        return BadRequest(message, status=status, type=type, param=param, code=code,
                          provider=provider, upstream_status=status)
    return UpstreamFault(f"provider '{provider}' answered {status}: {message}",
                         provider=provider, upstream_status=status)
