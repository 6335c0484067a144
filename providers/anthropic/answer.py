"""An Anthropic message as an OpenAI `chat.completion` (pure)."""
from __future__ import annotations

from typing import Any

import orjson

from providers.base import Usage
from providers.chat_format import completion, message, tool_call
from providers.errors import UpstreamFault

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",                       # a server tool paused the turn: the answer so far
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    return FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def usage(u: Any) -> Usage:
    """OpenAI's counts from Anthropic's, whose `input_tokens` leaves out the
    prompt tokens read from or written to the cache."""
    if not isinstance(u, dict):
        return Usage()
    read = u.get("cache_read_input_tokens") or 0
    written = u.get("cache_creation_input_tokens") or 0
    return Usage(prompt_tokens=(u.get("input_tokens") or 0) + read + written,
                 completion_tokens=u.get("output_tokens") or 0, cached_tokens=read, cache_write_tokens=written)


def translate(body: bytes, *, provider: str) -> tuple[bytes, Usage]:
    """The client's JSON body and the usage counted, from Anthropic's message."""
    doc = _message(body, provider)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in doc.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(tool_call(block.get("id") or "", block.get("name") or "", arguments))
        # thinking and server-tool blocks have no place in OpenAI's message
    text = "".join(texts)
    counted = usage(doc.get("usage"))
    out = completion(doc.get("id") or "", doc.get("model") or "",
                     [{"message": message(text if text or not calls else None, calls),
                       "finish_reason": finish_reason(doc.get("stop_reason"))}], counted)
    return orjson.dumps(out), counted


def _message(body: bytes, provider: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamFault(f"provider '{provider}' answered with a body that is not JSON",
                            provider=provider) from None
    if isinstance(doc, dict) and doc.get("type") == "message":
        return doc
    raise UpstreamFault(f"provider '{provider}' answered with something that is not a message",
                        provider=provider)

