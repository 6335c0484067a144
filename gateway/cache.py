"""The exact-match response cache, for models with `cache: {ttl_s}`.

Keyed on the request as it will be served (the served model, every field but
the streaming switches, keys sorted) and on the key's scope, so a key sees
only its own answers unless the model's cache is `shared`. Whole answers are
stored; a streaming request is served from them as a replayed stream.
`cache-control: no-cache` skips the lookup, `no-store` skips lookup and store.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.config.schema import CacheConfig
from providers.base import Usage
from providers.chat_format import ChunkWriter, wants_usage_chunk
from providers.sse import DONE, encode

_NOT_IN_KEY = ("stream", "stream_options")


@dataclass(slots=True)
class Cached:
    provider: str
    body: bytes
    usage: Usage


def lookup_key(cache: CacheConfig, key_id: str, model: str, op: str, data: dict[str, Any]) -> str:
    request = {k: v for k, v in data.items() if k not in _NOT_IN_KEY}
    request["model"] = model
    scope = "*" if cache.shared else key_id     # by id: a reused name must not read the old key's answers
    digest = hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"cache:{op}:{scope}:{digest}"


def directives(headers: dict[bytes, bytes]) -> tuple[bool, bool]:
    """(read, write) as the client's cache-control allows."""
    value = headers.get(b"cache-control", b"").lower()
    if b"no-store" in value:
        return False, False
    if b"no-cache" in value:
        return False, True
    return True, True


def pack(provider: str, body: bytes, usage: Usage | None) -> bytes:
    u = usage or Usage()
    return orjson.dumps({"provider": provider, "usage": [u.prompt_tokens, u.completion_tokens, u.cached_tokens]}) \
        + b"\n" + body


def unpack(value: bytes) -> Cached:
    head, _, body = value.partition(b"\n")
    meta = orjson.loads(head)
    return Cached(meta["provider"], body, Usage(*meta["usage"]))


def replay(body: bytes, data: dict[str, Any]) -> bytes:
    """A cached chat.completion as the SSE stream it would have been."""
    doc = orjson.loads(body)
    writer = ChunkWriter(doc.get("id", "chatcmpl-cached"), doc.get("model", ""), doc.get("created"))
    out = []
    for choice in doc.get("choices", []):
        i = choice.get("index", 0)
        message = choice.get("message") or {}
        out.append(encode(writer.delta({"role": "assistant", "content": ""}, index=i)))
        if message.get("content"):
            out.append(encode(writer.delta({"content": message["content"]}, index=i)))
        for n, call in enumerate(message.get("tool_calls") or []):
            out.append(encode(writer.delta({"tool_calls": [{"index": n, **call}]}, index=i)))
        out.append(encode(writer.delta({}, choice.get("finish_reason") or "stop", index=i)))
    if wants_usage_chunk(data) and isinstance(doc.get("usage"), dict):
        chunk = writer.delta({})
        chunk["choices"], chunk["usage"] = [], doc["usage"]
        out.append(encode(chunk))
    out.append(DONE)
    return b"".join(out)
