"""Errors the gateway answers with, rendered in OpenAI's shape.

Every path answers failures through `ApiError`, so a client always sees
`{"error": {"message", "type", "param", "code"}}` and never a stack trace.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable

import orjson

from providers.errors import ProviderError, RateLimited


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: list[tuple[bytes, bytes]] | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or []
        self.extra = extra       # more fields in the error object, e.g. "errors" for a config edit
        self.upstream_status: int | None = None    # what the provider answered, when it ended the request

    def body(self) -> bytes:
        if self.extra:
            return orjson.dumps({"error": {"message": self.message, "type": self.type, "param": self.param,
                                           "code": self.code, **self.extra}})
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def allowing(method: str, path: str, methods: Collection[str]) -> None:
    """Nothing where `method` is one of `methods`; else their 405."""
    if method not in methods:
        raise not_allowed(method, path, methods)


def not_allowed(method: str, path: str, methods: Iterable[str]) -> ApiError:
    """The 405 that names the methods a path takes (and says them in `allow`)."""
    listed = ", ".join(methods)
    return ApiError(405, f"Method {method} is not allowed for {path}; use {listed}.", code="method_not_allowed",
                    headers=[(b"allow", listed.encode())])


def invalid_api_key() -> ApiError:
    return ApiError(401, "Incorrect API key provided. Pass a gateway key as 'Authorization: Bearer <key>'.",
                    code="invalid_api_key")


def model_not_found(model: str) -> ApiError:
    return ApiError(404, f"The model '{model}' does not exist or you do not have access to it.",
                    param="model", code="model_not_found")


def from_provider(err: ProviderError) -> ApiError:
    """The client-facing answer for an upstream failure that ended the request."""
    headers = []
    if isinstance(err, RateLimited) and err.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(err.retry_after))).encode()))
    answer = ApiError(err.status, err.message, type=err.type, param=err.param, code=err.code, headers=headers)
    answer.upstream_status = err.upstream_status
    return answer
