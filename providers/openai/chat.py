"""OpenAI's wire format is the gateway's own, so translation is a model swap on
the raw bytes and reading error bodies; answers pass through untouched."""
from __future__ import annotations

import re
from typing import Any, Mapping

import orjson

from providers import errors
from providers.http import retry_after


def with_model(body: bytes, data: dict[str, Any], model: str) -> bytes:
    """`body` with its top-level "model" set to `model`, without re-serialising.

    The value is spliced in place when its spelling occurs exactly once; any
    doubt (escapes, a nested "model" key with the same value) falls back to
    re-encoding the parsed body.
    """
    current = data.get("model")
    if current == model:
        return body
    quoted = orjson.dumps(current)
    found = list(re.finditer(rb'"model"\s*:\s*' + re.escape(quoted), body))
    if len(found) == 1:
        end = found[0].end()
        return body[:end - len(quoted)] + orjson.dumps(model) + body[end:]
    return orjson.dumps({**data, "model": model})


def parse_error(status: int, body: bytes, headers: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    """The failure kind for a non-2xx answer in OpenAI's (or a look-alike's) shape."""
    message, type_, param, code = _error_fields(body)
    if not message:
        message = f"HTTP {status}"
    if secret and secret in message:
        message = message.replace(secret, "***")
    return errors.from_status(status, message, provider=provider, retry_after=retry_after(headers),
                              type=type_, param=param, code=code)


def _error_fields(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip(), None, None, None
    if not isinstance(doc, dict):
        return "", None, None, None
    err = doc.get("error", doc)
    if isinstance(err, str):           # {"error": "text"}: some compatible servers
        return err, None, None, None
    if not isinstance(err, dict):
        return "", None, None, None
    message = err.get("message") or err.get("detail") or ""
    if not isinstance(message, str):
        message = orjson.dumps(message).decode()
    code = err.get("code")
    return (message, _str(err.get("type")), _str(err.get("param")),
            None if code is None else str(code))


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None
