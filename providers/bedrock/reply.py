"""Bedrock Converse answers as OpenAI chat completions (pure)."""
from __future__ import annotations

import secrets
from typing import Any

import orjson

from providers import chat_format as cf
from providers.base import Usage
from providers.errors import UpstreamFault

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
          "model_context_window_exceeded": "length", "tool_use": "tool_calls",
          "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}


def completion_id() -> str:
    return f"chatcmpl-bedrock-{secrets.token_hex(12)}"


def finish_reason(stop_reason: Any) -> str:
    return FINISH.get(stop_reason, "stop")


def usage_of(u: Any) -> Usage:
    """Bedrock counts cache reads and writes apart from `inputTokens`; OpenAI's
    prompt_tokens holds them all."""
    if not isinstance(u, dict):
        return Usage()
    read = int(u.get("cacheReadInputTokens") or 0)
    write = int(u.get("cacheWriteInputTokens") or 0)
    return Usage(prompt_tokens=int(u.get("inputTokens") or 0) + read + write,
                 completion_tokens=int(u.get("outputTokens") or 0), cached_tokens=read, cache_write_tokens=write)


def completion(body: bytes, model: str, provider: str) -> tuple[bytes, Usage]:
    """(the chat.completion body, its usage) for a Converse answer."""
    try:
        doc = orjson.loads(body)
        blocks = doc["output"]["message"]["content"]
        if not isinstance(blocks, list):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise UpstreamFault(f"provider '{provider}' sent an answer that is not a Converse response",
                            provider=provider) from None
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            text.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append(cf.tool_call(use.get("toolUseId", ""), use.get("name", ""),
                                      orjson.dumps(use.get("input", {})).decode()))
        # reasoningContent, citations, images: not part of OpenAI's chat answer
    usage = usage_of(doc.get("usage"))
    content = "".join(text) if text or not calls else None
    out = cf.completion(completion_id(), model, [{"message": cf.message(content, calls),
                                                  "finish_reason": finish_reason(doc.get("stopReason"))}], usage)
    return orjson.dumps(out), usage
