"""Gemini `GenerateContentResponse`s read as OpenAI chat answers (pure); the
pieces here serve whole answers and stream chunks alike."""
from __future__ import annotations

import secrets
from typing import Any

import orjson

from providers import chat_format
from providers.base import Usage
from providers.errors import BadRequest, UpstreamFault

_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                       "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})


def completion(body: bytes, model: str, *, single_call: bool = False) -> tuple[bytes, Usage]:
    """A `chat.completion` body from a `generateContent` answer, and its usage."""
    doc = parse(body)
    candidates = doc.get("candidates")
    if not candidates or not isinstance(candidates, list):
        raise UpstreamFault("Gemini answered without candidates")
    choices = []
    for candidate in candidates:
        text, calls = read_parts(candidate, single_call)
        choices.append({"message": chat_format.message(text if text or not calls else None, calls or None),
                        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls))})
    usage, thoughts = read_usage(doc.get("usageMetadata"))
    out = chat_format.completion(doc.get("responseId") or new_id(), doc.get("modelVersion") or model,
                                 choices, usage)
    out["usage"] = usage_json(usage, thoughts)
    return orjson.dumps(out), usage


def parse(body: bytes) -> dict[str, Any]:
    """A response document; a prompt Gemini blocked outright is the request's fault."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamFault("Gemini sent an answer that is not JSON") from None
    if not isinstance(doc, dict):
        raise UpstreamFault("Gemini sent an answer that is not a JSON object")
    feedback = doc.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason and not doc.get("candidates"):
        raise BadRequest(f"Gemini blocked the prompt: {reason}", param="messages", code="content_filter")
    return doc


def read_parts(candidate: dict[str, Any], single_call: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """The candidate's text (thought summaries left out) and its function calls
    as OpenAI tool calls. `single_call`: the client asked for parallel_tool_calls=false."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts or []:
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict) and not (single_call and calls):
            calls.append(tool_call(part["functionCall"], part.get("thoughtSignature")))
    return "".join(texts), calls


def tool_call(call: dict[str, Any], signature: Any) -> dict[str, Any]:
    """An OpenAI tool call. A thought signature rides along in `extra_content`,
    where Google's own OpenAI endpoint puts it, so clients that echo the
    assistant message back hand it to the next request (see chat._signature)."""
    out = chat_format.tool_call(call.get("id") or new_call_id(), call.get("name", ""),
                                orjson.dumps(call.get("args") or {}).decode())
    if isinstance(signature, str) and signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def finish_reason(reason: str | None, called: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called else "stop"


def read_usage(meta: Any) -> tuple[Usage, int]:
    """Usage in OpenAI's terms, and the thinking tokens (counted as completion tokens, as Gemini bills them)."""
    if not isinstance(meta, dict):
        return Usage(), 0
    thoughts = meta.get("thoughtsTokenCount") or 0
    return Usage(prompt_tokens=meta.get("promptTokenCount") or 0,
                 completion_tokens=(meta.get("candidatesTokenCount") or 0) + thoughts,
                 cached_tokens=meta.get("cachedContentTokenCount") or 0), thoughts


def usage_json(usage: Usage, thoughts: int) -> dict[str, Any]:
    out = chat_format.usage_json(usage)
    out["completion_tokens_details"]["reasoning_tokens"] = thoughts
    return out


def new_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)
