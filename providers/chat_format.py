"""OpenAI's chat format, as translating adapters read and write it: pieces of
requests (content parts, images, tools) and builders for answers and chunks."""
from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from providers.base import Usage
from providers.errors import BadRequest

# -- reading requests ---------------------------------------------------------

def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise BadRequest("message content must be a string or an array of content parts", param="messages")


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:` URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, payload = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise BadRequest("image data URLs must be base64: data:<media type>;base64,<data>", param="messages")
    media_type = head[: -len(";base64")] or "application/octet-stream"
    try:
        base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise BadRequest("an image data URL holds invalid base64", param="messages") from None
    return media_type, payload


def image_url(part: dict[str, Any]) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise BadRequest("an image_url content part needs a url", param="messages")
    return url


def max_tokens(data: dict[str, Any]) -> int | None:
    value = data.get("max_completion_tokens")
    return value if value is not None else data.get("max_tokens")


def stop_list(data: dict[str, Any]) -> list[str] | None:
    stop = data.get("stop")
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def single_choice(data: dict[str, Any], provider: str) -> None:
    """Providers with no `n`: more than one choice is a clear 400."""
    n = data.get("n")
    if n is not None and n != 1:
        raise BadRequest(f"provider '{provider}' returns one choice per request; 'n' must be 1", param="n",
                         provider=provider, code="unsupported_parameter")


def wants_usage_chunk(data: dict[str, Any]) -> bool:
    options = data.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def function_tools(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's function tools as {name, description, parameters}."""
    out = []
    for t in data.get("tools") or []:
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(t.get("function"), dict):
            raise BadRequest("only function tools are supported: {\"type\": \"function\", \"function\": {...}}",
                             param="tools")
        fn = t["function"]
        if not isinstance(fn.get("name"), str):
            raise BadRequest("every function tool needs a name", param="tools")
        out.append({"name": fn["name"], "description": fn.get("description", ""),
                    "parameters": fn.get("parameters") or {"type": "object", "properties": {}}})
    return out


# -- writing answers ----------------------------------------------------------

def usage_json(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.prompt_tokens + u.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": 0}}


def message(content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def tool_call(id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(id: str, model: str, choices: list[dict[str, Any]], usage: Usage,
               created: int | None = None) -> dict[str, Any]:
    """A `chat.completion` object; `choices` as [{"message": ..., "finish_reason": ...}]."""
    return {"id": id, "object": "chat.completion", "created": created or int(time.time()), "model": model,
            "choices": [{"index": i, "message": c["message"], "logprobs": None,
                         "finish_reason": c["finish_reason"]} for i, c in enumerate(choices)],
            "usage": usage_json(usage)}


class ChunkWriter:
    """Builds the `chat.completion.chunk` objects of one streamed answer."""

    def __init__(self, id: str, model: str, created: int | None = None) -> None:
        self.id = id
        self.model = model
        self.created = created or int(time.time())

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}

    def usage(self, u: Usage) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage_json(u)}
