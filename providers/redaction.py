"""A provider's secrets, found once in its options, and hiding them in text.

Secrets are every value the gateway sends that would let someone else call
the upstream as the gateway: keys and tokens (any option named like one),
every `headers:` value, the user-info and token-like query values of a URL.
Each is also looked for in the forms an upstream may echo it in (the token
after "Bearer ", percent-encoded, JSON-escaped, Basic auth's base64).
"""
from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson

MASK = "***"
# Shorter values are not secrets worth the name, and hiding them would garble messages ("HTTP 4***").
MIN_LENGTH = 6
_SECRET_NAME = re.compile(r"key|token|secret|password|passwd|credential|signature|^sig$|^auth", re.I)
_CREDENTIAL_HEADER = re.compile(r"auth|cookie|session", re.I)
_SCHEMED = re.compile(r"^(bearer|basic|token|apikey|digest)\s", re.I)


def secrets_of(options: Any, extra: Iterable[str] = (), *, credentials_only: bool = False) -> tuple[str, ...]:
    """Every secret in a provider's options (a pydantic model or a mapping), in
    every form it may come back in, longest first (so no secret is left half
    hidden by a shorter one inside it). `credentials_only`: leave out header
    values whose header is not named like a credential (`x-title: My App`),
    which may well occur in an answer's ordinary text."""
    doc = options.model_dump() if hasattr(options, "model_dump") else options
    found: set[str] = set()
    for value, credential in [*_walk(doc, ""), *((e, True) for e in extra)]:
        if credentials_only and not credential:
            continue
        for form in _forms(value):
            if len(form) >= MIN_LENGTH:
                found.add(form)
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by "***"."""
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def scrub_bytes(data: bytes, secrets: Sequence[bytes]) -> bytes:
    for s in secrets:
        if s in data:
            data = data.replace(s, MASK.encode())
    return data


def _walk(value: Any, name: str) -> Iterator[tuple[str, bool]]:
    """(secret-bearing string, whether it is surely a credential) under `value`,
    found by field name and shape."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if name == "headers" and isinstance(v, str):
                # Any header may carry a credential; one named like it, or with a scheme, surely does.
                yield v, bool(_SECRET_NAME.search(str(k)) or _CREDENTIAL_HEADER.search(str(k))
                              or _SCHEMED.match(v))
            else:
                yield from _walk(v, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v, name)
    elif isinstance(value, str) and value:
        if _SECRET_NAME.search(name):
            yield value, True
        if "://" in value:
            yield from ((s, True) for s in _url_secrets(value))


def _url_secrets(url: str) -> Iterator[str]:
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return
    if user and password:
        yield from (password, unquote(password), f"{user}:{password}", f"{unquote(user)}:{unquote(password)}")
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        yield base64.b64encode(pair).decode()            # what goes out as "Authorization: Basic ..."
    elif user:
        yield from (user, unquote(user))                 # https://TOKEN@host
    for k, v in parse_qsl(parts.query, keep_blank_values=False):
        if _SECRET_NAME.search(k) or k.lower() == "code" or len(v) >= 20:
            yield v
            yield quote(v, safe="")


def _forms(value: str) -> Iterator[str]:
    yield value
    scheme, _, token = value.partition(" ")
    if token and scheme.isalpha():                       # "Bearer xyz", "Basic xyz": the token alone too
        yield token.strip()
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(token.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                pair = ""
            yield pair
            yield pair.partition(":")[2]
    yield quote(value, safe="")
    yield orjson.dumps(value).decode()[1:-1]
