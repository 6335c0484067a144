"""OpenAI's wire format is the gateway's own, so translation is a model swap on
the raw bytes and reading error bodies; answers pass through untouched."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers import errors, sse
from providers.base import Reply, Usage
from providers.http import retry_after


def with_model(body: bytes, data: dict[str, Any], model: str) -> bytes:
    """`body` with its top-level "model" set to `model`, without re-serialising
    when that is sure to touch only the top-level key; re-encoded otherwise.

    Sure means: no `\\u` escape in the body (the only escape that can spell a key
    "model" another way) and `"model"` occurring exactly once, so that one
    occurrence is the top-level key itself, not a nested one, a duplicate or text.
    """
    if "model" in data and b"\\u" not in body and body.count(b'"model"') == 1:
        current = data.get("model")
        if current == model:
            return body
        value_at = _skip_colon(body, body.index(b'"model"') + 7)
        quoted = orjson.dumps(current)
        if value_at > 0 and body.startswith(quoted, value_at):
            return body[:value_at] + orjson.dumps(model) + body[value_at + len(quoted):]
    # One key per name: upstreams differ on which duplicate wins, so none is left to choose.
    return orjson.dumps({**data, "model": model})


def _skip_colon(body: bytes, i: int) -> int:
    """Where the value starts after `"key"` at i: past blanks, ':' and blanks; -1 if malformed."""
    n = len(body)
    while i < n and body[i] in b" \t\r\n":
        i += 1
    if i >= n or body[i] != 58:   # ':'
        return -1
    i += 1
    while i < n and body[i] in b" \t\r\n":
        i += 1
    return i


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
        return errors.body_text(body), None, None, None
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


def usage_of(body: bytes) -> Usage | None:
    """The usage record of an OpenAI-shaped answer or chunk (None if it has none)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return usage_in(doc) if isinstance(doc, dict) else None


def usage_in(doc: dict[str, Any]) -> Usage | None:
    """The usage record of a parsed OpenAI-shaped answer (None if it has none)."""
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details") or {}
    return Usage(prompt_tokens=usage.get("prompt_tokens") or 0,
                 completion_tokens=usage.get("completion_tokens") or 0,
                 cached_tokens=details.get("cached_tokens") or 0 if isinstance(details, dict) else 0)


def with_usage_requested(body: bytes, data: dict[str, Any], model: str) -> bytes:
    """A streaming body that asks for the final usage chunk: spliced in front when
    the client sent no `stream_options`, else re-encoded with include_usage on."""
    options = data.get("stream_options")
    if "stream_options" not in data:   # absent, not null: a spliced key in front must not be a duplicate
        at = body.index(b"{") + 1
        return body[:at] + b'"stream_options":{"include_usage":true},' + body[at:]
    kept = options if isinstance(options, dict) else {}
    return orjson.dumps({**data, "model": model, "stream_options": {**kept, "include_usage": True}})


_USAGE = (b'"usage":{', b'"usage": {')


def watch_usage(reply: Reply, *, hide: bool = False) -> sse.Watch:
    """Relays a stream untouched, noting the usage chunk when one goes by (and
    leaving it out when `hide`: the gateway asked for it, not the client). Only
    the events that hold a usage object are parsed (a substring search finds them)."""
    def watch(block: bytes) -> bytes:
        # Searched from the end: a usage object is in a stream's last chunk, and a
        # block without any `"usage":` costs one scan, not two.
        at = block.rfind(b'"usage":')
        if at < 0:
            return block
        value = at + 9 if block[at + 8:at + 9] == b" " else at + 8
        if block[value:value + 1] == b"{":
            span = sse.lone_event_at(block, at)
            # The usual usage event, read without splitting the block up: the last one, and (when
            # it may be cut out) the only one with a usage object.
            if span is not None and (not hide or (block.find(_USAGE[0], 0, span[0]) < 0
                                                  and block.find(_USAGE[1], 0, span[0]) < 0)):
                start, end = span
                data = block[start + 6:end]
                found = usage_of(data)
                reply.usage = found or reply.usage
                if hide and found is not None and _no_choices(data):
                    block = block[:start] + block[end + 2:]
                    return block if block.strip() else b""
                return block
        elif _USAGE[0] not in block and _USAGE[1] not in block:
            return block    # `"usage":null` chunks (a client that asked for usage gets them all)
        cut: list[tuple[int, int]] = []
        for start, end, data in sse.spans_with(block, _USAGE):
            found = usage_of(data)
            if found is not None:
                reply.usage = found
                if hide and _no_choices(data):
                    cut.append((start, end))
        if not cut:
            return block
        kept, at = [], 0
        for start, end in cut:
            kept.append(block[at:start])
            at = end
        kept.append(block[at:])
        block = b"".join(kept)
        return block if block.strip() else b""
    return watch


def _no_choices(data: bytes) -> bool:
    """Whether a chunk is the usage chunk alone (`"choices":[]`), which a client that did not ask
    for usage must not see."""
    return b'"choices":[]' in data or b'"choices":[]' in data.replace(b" ", b"")
