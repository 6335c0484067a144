"""multipart/form-data bodies (RFC 7578), split into parts: what the OpenAI
SDK sends to /v1/videos. Pure; errors are OpenAI-shaped 400s."""
from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.errors import bad_request

MAX_PARTS = 64
MAX_PART_HEADER_BYTES = 8 * 1024


def content_type(raw: bytes) -> tuple[str, dict[str, str]]:
    """A Content-Type header's media type (lower case) and parameters."""
    media_type, *rest = raw.decode("latin-1").split(";")
    params = {}
    for item in rest:
        key, _, val = item.strip().partition("=")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params[key.strip().lower()] = val
    return media_type.strip().lower(), params


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    data: bytes


def _malformed(why: str):
    return bad_request(f"Malformed multipart/form-data body: {why}.")


def split(body: bytes, boundary: bytes) -> list[Part]:
    """Split a multipart/form-data body (RFC 7578) into its parts."""
    delimiter = b"--" + boundary
    if body.startswith(delimiter):
        pos = 0
    else:  # a preamble before the first delimiter is allowed, and ignored
        pos = body.find(b"\r\n" + delimiter)
        if pos < 0:
            raise _malformed("the boundary from the Content-Type does not occur in the body")
        pos += 2
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body[pos:pos + 2] == b"--":
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0 or body[pos:eol].strip(b" \t"):
            raise _malformed("a boundary line is not followed by CRLF")
        end = body.find(b"\r\n" + delimiter, eol + 2)
        if end < 0:
            raise _malformed("the body ends before the closing boundary")
        if len(parts) == MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        parts.append(_part(body[eol + 2:end]))
        pos = end + 2


def _part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n"):
        head, data = b"", raw[2:]
    else:
        head, sep, data = raw.partition(b"\r\n\r\n")
        if not sep:
            raise _malformed("a part has no blank line after its headers")
    if len(head) > MAX_PART_HEADER_BYTES:
        raise _malformed("a part's headers are too long")
    disposition = None
    for line in head.split(b"\r\n"):
        key, colon, value = line.partition(b":")
        if not colon:
            raise _malformed("a part header has no colon")
        if key.strip().lower() == b"content-disposition":
            disposition = value.decode("utf-8", "replace")
    if disposition is None:
        raise _malformed("a part has no Content-Disposition header")
    kind, params = _disposition(disposition)
    if kind != "form-data" or "name" not in params:
        raise _malformed("a part's Content-Disposition is not form-data with a name")
    return Part(params["name"], params.get("filename"), data)


_PARAM = re.compile(r';\s*([A-Za-z0-9_*.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def _disposition(value: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = value.strip().partition(";")
    params = {}
    for m in _PARAM.finditer(";" + rest):
        quoted = m[2]
        params[m[1].lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else m[3]
    return kind.strip().lower(), params
