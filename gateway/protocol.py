"""The OpenAI wire surface the gateway serves, declared once.

Request checks cover the fields the gateway itself reads or that every
provider needs; everything else passes through untouched for the upstream
to judge. Checks are plain type tests: they run on every request.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson

from gateway.errors import ApiError, bad_request

# Parse time grows with the number of JSON values, not with bytes: 16 MB of
# `[],` takes over a second to parse, on the event loop, holding up every other
# request; 16 MB of one base64 string takes 16 ms. So a large body's parse is
# estimated from byte counts first and refused past `server.max_json_parse_ms`.
# Costs per value measured with orjson: an object or array up to ~200 ns, a
# string ~110 ns, a number ~40 ns. Braces, commas and quotes inside strings are
# counted too, which only over-estimates: a prompt of a million tokens of code
# still fits. Counting costs ~0.4 ns a byte per character counted, so it runs
# in slices with the loop free between them, and stops at the first slice over.
ESTIMATE_FROM = 128 * 1024
_SLICE = 2 * 1024 * 1024


def parse_ns(body: bytes, start: int = 0, end: int | None = None) -> int:
    """An upper estimate of the nanoseconds orjson takes to parse body[start:end]."""
    return (200 * (body.count(b"{", start, end) + body.count(b"[", start, end))
            + 55 * body.count(b'"', start, end) + 40 * body.count(b",", start, end))


async def check_parse_work(body: bytes, max_parse_ms: float) -> None:
    """A 413 for a body too costly to parse on the event loop (call it for
    bodies of ESTIMATE_FROM bytes or more)."""
    work, budget = 0, max_parse_ms * 1e6
    for start in range(0, len(body), _SLICE):
        work += parse_ns(body, start, start + _SLICE)
        if work > budget:
            raise ApiError(413, "The request body holds too many JSON values to parse within the gateway's "
                                f"budget ({max_parse_ms:g} ms); send fewer values, or split the request.",
                           code="request_too_large")
        await asyncio.sleep(0)


def json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise bad_request("The request body is empty; send a JSON object.")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"We could not parse the JSON body of your request: {e.msg} "
                          f"(at byte {e.pos}).") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def _model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("You must provide a model parameter (a non-empty string).", param="model")
    return model


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_name(v: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def _wrong_type(name: str, v: Any, expected: str):
    return bad_request(f"Invalid type for '{name}': expected {expected}, but got {_type_name(v)}.",
                       param=name, code="invalid_type")


def _check_fields(data: dict[str, Any], checks: dict[str, tuple[Any, str, tuple[float, float] | None]]) -> None:
    """Type (and range) checks for the optional fields a body has; one dict
    lookup per field present, so a small body costs little."""
    for name, v in data.items():
        check = checks.get(name)
        if check is None or v is None:
            continue
        ok, expected, bounds = check
        if not ok(v):
            raise _wrong_type(name, v, expected)
        if bounds is not None and not bounds[0] <= v <= bounds[1]:
            raise bad_request(f"'{name}' must be between {bounds[0]:g} and {bounds[1]:g}, got {v}.",
                              param=name, code="invalid_value")


_INT = (_is_int, "an integer", None)
_NUMBER = (_is_number, "a number", None)
_CHAT_FIELDS: dict[str, tuple[Any, str, tuple[float, float] | None]] = {
    "stream": (lambda v: isinstance(v, bool), "a boolean", None),
    "stream_options": (lambda v: isinstance(v, dict), "an object", None),
    "n": (_is_int, "an integer", (1, 128)),
    "max_tokens": (_is_int, "an integer", (1, 10_000_000)),
    "max_completion_tokens": (_is_int, "an integer", (1, 10_000_000)),
    "seed": _INT,
    "temperature": (_is_number, "a number", (0, 2)),
    "top_p": (_is_number, "a number", (0, 1)),
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "tools": (lambda v: isinstance(v, list), "an array", None),
    "tool_choice": (lambda v: isinstance(v, (str, dict)), "a string or an object", None),
    "response_format": (lambda v: isinstance(v, dict), "an object", None),
    "stop": (lambda v: isinstance(v, (str, list)), "a string or an array", None),
}


def chat_request(body: bytes) -> tuple[dict[str, Any], bool]:
    """The parsed body of a chat completion request, and whether it streams."""
    data = json_object(body)
    _model(data)
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array of message objects.", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise bad_request(f"Invalid 'messages[{i}]': expected an object with a string 'role'.",
                              param=f"messages[{i}]")
    _check_fields(data, _CHAT_FIELDS)
    stream = data.get("stream") is True
    if not stream and data.get("stream_options") is not None:
        raise bad_request("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                          param="stream_options")
    return data, stream


_EMBEDDING_FIELDS: dict[str, tuple[Any, str, tuple[float, float] | None]] = {
    "dimensions": (_is_int, "an integer", (1, 65_536)),
}


def embeddings_request(body: bytes) -> dict[str, Any]:
    data = json_object(body)
    _model(data)
    value = data.get("input")
    ok = (isinstance(value, str) and value) or (
        isinstance(value, list) and value and (
            all(isinstance(x, str) for x in value) or all(_is_int(x) for x in value)
            or all(isinstance(x, list) and x and all(_is_int(t) for t in x) for x in value)))
    if not ok:
        raise bad_request("'input' must be a non-empty string, array of strings, or array of token arrays.",
                          param="input")
    _check_fields(data, _EMBEDDING_FIELDS)
    fmt = data.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    return data


def model_object(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "gateway"}


def model_list(names: list[str], created: int) -> bytes:
    return orjson.dumps({"object": "list", "data": [model_object(n, created) for n in names]})


def stream_error(message: str, type: str, code: str | None) -> bytes:
    """How a failure after the first byte reaches a streaming client: one more
    event, which the OpenAI SDKs raise as an APIError."""
    return b"data: " + orjson.dumps({"error": {"message": message, "type": type, "param": None,
                                               "code": code}}) + b"\n\n"
