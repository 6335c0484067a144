"""A whole chat answer as a Responses API `response` object, and the output items
and usage a response is made of (the stream translator, events.py, builds the
same items). Pure dict work, no I/O."""
from __future__ import annotations

import secrets
from typing import Any

from gateway.responses import tools


def new_id(prefix: str) -> str:
    """A random id in OpenAI's style: the prefix and 48 hex characters."""
    return prefix + secrets.token_hex(24)



def response_from_chat(chat: dict, request: dict, *, response_id: str, created_at: int, model: str) -> dict:
    """The Response object for a whole `chat.completion` answer to the chat form of `request`."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message: dict = choice["message"] if isinstance(choice.get("message"), dict) else {}
    status, reason = finish_status(choice.get("finish_reason"))
    output = []
    if message.get("reasoning_content"):
        output.append(reasoning_item(new_id("rs_"), message["reasoning_content"]))
    parts = []
    if message.get("content"):
        parts.append(text_part(message["content"]))
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(message_item(new_id("msg_"), parts, "incomplete" if status == "incomplete" else "completed"))
    names = tools.declared_names(request) if message.get("tool_calls") else {}
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(tools.call_item(new_id("fc_"), call.get("id") or new_id("call_"), function.get("name") or "",
                                      function.get("arguments") or "", names))
    return build_response(request, response_id=response_id, created_at=created_at, model=model, status=status,
                          output=output, usage=chat.get("usage"), incomplete_reason=reason,
                          service_tier=chat.get("service_tier"))


def finish_status(finish_reason: Any) -> tuple[str, str | None]:
    """The Response status and `incomplete_details.reason` for a chat finish reason."""
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, content: list[dict], status: str) -> dict:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str | None) -> dict:
    summary = [{"type": "summary_text", "text": text}] if text is not None else []
    return {"id": item_id, "type": "reasoning", "summary": summary}


def response_usage(usage: Any) -> dict | None:
    """Chat usage in the Response's terms; None when the upstream told nothing."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    prompt_details = _details(usage, "prompt_tokens_details")
    # cache writes have no standard chat field; Anthropic-style upstreams put them beside cached_tokens
    cached = {"cached_tokens": _count(prompt_details.get("cached_tokens")),
              "cache_write_tokens": _count(prompt_details.get("cache_write_tokens"))}
    reasoning = _count(_details(usage, "completion_tokens_details").get("reasoning_tokens"))
    total = usage.get("total_tokens")
    return {"input_tokens": prompt, "input_tokens_details": cached,
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": total if isinstance(total, int) else prompt + completion}


def _details(usage: dict, key: str) -> dict:
    details = usage.get(key)
    return details if isinstance(details, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def build_response(request: dict, *, response_id: str, created_at: int, model: str, status: str, output: list,
                   usage: Any = None, incomplete_reason: str | None = None, error: dict | None = None,
                   service_tier: Any = None) -> dict:
    """A Response object: the answer's parts plus the request's settings echoed as OpenAI echoes them."""
    reasoning: dict = request["reasoning"] if isinstance(request.get("reasoning"), dict) else {}
    text: dict = request["text"] if isinstance(request.get("text"), dict) else {}
    response = {
        "id": response_id, "object": "response", "created_at": created_at, "status": status,
        "background": False, "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.get("instructions"), "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"), "model": model, "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"), "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
        "tool_choice": request.get("tool_choice", "auto"), "tools": _echoed_tools(request.get("tools")),
        "top_logprobs": request.get("top_logprobs", 0), "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation") or "disabled", "usage": response_usage(usage),
        "user": request.get("user"), "metadata": request.get("metadata") or {},
    }
    if service_tier is not None:
        response["service_tier"] = service_tier
    return response


def _echoed_tools(tools: Any) -> list:
    # fields the client left out are echoed as null, as OpenAI's Response object always carries them
    return [{"description": None, "parameters": None, "strict": None, **tool} for tool in tools or ()]
