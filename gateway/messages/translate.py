"""Anthropic's Messages API (`POST /v1/messages`) as a dialect over chat completions.

A Messages request becomes a chat request (`to_chat`), a whole chat answer becomes an Anthropic `message`
(`message_from_chat`); `events.StreamTranslator` does the same for a chat stream. Pure dict work, no I/O.
Errors are `MessagesError`, rendered in Anthropic's envelope: Anthropic's errors have no `param`, so the
place is the start of the message ("messages.2.content.0.type: ...").

What a chat backend cannot do is refused with a 400 rather than dropped in silence: server tools (web
search, bash, text editor, code execution, computer, memory, ...), `mcp_servers`, images and documents by
`file` id or PDF by URL (no files API, and chat's file part takes data only), `search_result` and other
block types chat has no part for.
Choices where chat has no slot:
- `tool_result` blocks become `tool` messages, placed before the rest of their user turn, as chat wants them
  right after the assistant's calls; `is_error` prefixes the text with "Error: " (chat has no flag for it,
  and the model should know); images and documents in a result go in the user message that follows, since
  a tool message carries text only.
- `thinking` and `redacted_thinking` blocks sent back are dropped: chat has no place for them, and their
  signatures mean nothing to another model, which reasons afresh.
- `top_k` is checked and dropped (chat has none); `cache_control`, `citations` and a document's `context` are
  ignored, and so are top-level fields that do not change the answer (`container`, `service_tier`, `speed`,
  `inference_geo`, `diagnostics`, ...); `thinking.budget_tokens` becomes a `reasoning_effort` (below 4096
  low, below 16384 medium, else high) and so does `output_config.effort` (`xhigh` and `max` as high);
  `adaptive` and `between_tools` thinking leave the effort to the model; `output_config.format` becomes a
  `json_schema` response format; a `system` message among the turns stays a system message in its place.
- `tool_choice` and `disable_parallel_tool_use` are sent only with tools, as chat backends refuse them alone.
- several text blocks of an assistant turn are joined as they stand (they are pieces of one answer); the text
  blocks of a tool result are joined by newlines (they are separate outputs).
- a tool call whose arguments are not a JSON object comes back with `input: {}`: Anthropic's input must be
  an object, and the client's tool then reports the missing fields, which the model can act on.
"""
from __future__ import annotations

import math
import secrets
import string
from typing import Any

import orjson

from providers import exact_json

__all__ = ["MessagesError", "error_body", "to_chat", "message_from_chat", "count_tokens_estimate", "new_id",
           "stop_reason", "message_usage", "tool_input", "tool_use_block"]

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ALPHABET = string.ascii_letters + string.digits
_BLOCK_KINDS = {"user": ("text", "image", "document", "tool_result"),
                "assistant": ("text", "tool_use", "thinking", "redacted_thinking"), "system": ("text",)}
_THINKING = ("enabled", "disabled", "adaptive", "between_tools")
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
           "content_filter": "refusal"}


class MessagesError(Exception):
    """A failure in Anthropic's terms: `status`, error `type` and a `message` that starts with the place."""

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message

    def body(self) -> bytes:
        return error_body(self.type, self.message)


def error_body(type: str, message: str) -> bytes:
    """Anthropic's error envelope."""
    return orjson.dumps({"type": "error", "error": {"type": type, "message": message}})


def new_id(prefix: str) -> str:
    """A random id in Anthropic's style: the prefix and 24 letters and digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


# --- checks: each returns the value or raises a 400 naming where it is ---

def _need(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    # bool is an int in Python, but not a number in JSON
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MessagesError(f"{where}: Input should be {what}.")
    return value


def _obj(value: Any, where: str) -> dict:
    return _need(value, dict, where, "an object")


def _str(value: Any, where: str) -> str:
    return _need(value, str, where, "a string")


def _list(value: Any, where: str) -> list:
    return _need(value, list, where, "an array")


def _int(value: Any, where: str, low: int) -> int:
    if _need(value, int, where, "an integer") < low:
        raise MessagesError(f"{where}: Input should be greater than or equal to {low}.")
    return value


def _number(value: Any, where: str) -> float:
    if not 0 <= _need(value, (int, float), where, "a number") <= 1:
        raise MessagesError(f"{where}: Input should be between 0 and 1.")
    return value


def _field(obj: dict, key: str, where: str) -> Any:
    if obj.get(key) is None:
        raise MessagesError(f"{where}.{key}: Field required." if where else f"{key}: Field required.")
    return obj[key]


def _unsupported(where: str, what: str) -> MessagesError:
    return MessagesError(f"{where}: {what} is not supported by this gateway.")


# --- request -> chat ---

def to_chat(request: dict) -> dict:
    """The chat completions request for a Messages create request."""
    return _chat(request, need_max_tokens=True)


def count_tokens_estimate(request: dict) -> int:
    """The gateway's estimate for `/v1/messages/count_tokens`: about 4 bytes a token over the chat form's
    messages and tools. The request is checked as `to_chat` checks it, except that `max_tokens` is optional."""
    chat = _chat(request, need_max_tokens=False)
    size = len(orjson.dumps({"messages": chat["messages"], "tools": chat.get("tools", [])}))
    return max(1, math.ceil(size / 4))


def _chat(request: Any, *, need_max_tokens: bool) -> dict:
    _obj(request, "body")
    chat: dict[str, Any] = {"model": _str(_field(request, "model", ""), "model")}
    if need_max_tokens or request.get("max_tokens") is not None:
        chat["max_completion_tokens"] = _int(_field(request, "max_tokens", ""), "max_tokens", 1)
    if request.get("mcp_servers") is not None:
        raise _unsupported("mcp_servers", "Calling MCP servers from the API")
    messages = _Messages()
    if request.get("system") is not None:
        system = _system_text(request["system"], "system")
        if system:
            messages.out.append({"role": "system", "content": system})
    raw = _field(request, "messages", "")
    if not _list(raw, "messages"):
        raise MessagesError("messages: at least one message is required.")
    for i, message in enumerate(raw):
        messages.add(message, f"messages.{i}")
    if all(m["role"] == "system" for m in messages.out):
        raise MessagesError("messages: no user or assistant content is left once thinking blocks are left out.")
    chat["messages"] = messages.out
    tools = _tools(request["tools"]) if request.get("tools") is not None else []
    if tools:
        chat["tools"] = tools
    if request.get("tool_choice") is not None:
        chat.update(_tool_choice(request["tool_choice"], bool(tools)))
    chat.update(_settings(request))
    return chat


def _settings(request: dict) -> dict:
    chat: dict[str, Any] = {}
    if request.get("stop_sequences") is not None:
        stop = [_str(s, f"stop_sequences.{i}") for i, s in enumerate(_list(request["stop_sequences"],
                                                                           "stop_sequences"))]
        if stop:
            chat["stop"] = stop
    for key in ("temperature", "top_p"):
        if request.get(key) is not None:
            chat[key] = _number(request[key], key)
    if request.get("top_k") is not None:
        _int(request["top_k"], "top_k", 0)    # chat has no top_k
    if request.get("metadata") is not None:
        user = _obj(request["metadata"], "metadata").get("user_id")
        if user is not None:
            chat["user"] = _str(user, "metadata.user_id")
    if request.get("thinking") is not None:
        chat.update(_thinking(_obj(request["thinking"], "thinking")))
    if request.get("output_config") is not None:
        chat.update(_output_config(_obj(request["output_config"], "output_config")))
    if request.get("stream") is not None and _need(request["stream"], bool, "stream", "a boolean"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}    # the message_delta carries usage at the end
    return chat


def _thinking(thinking: dict) -> dict:
    kind = _str(_field(thinking, "type", "thinking"), "thinking.type")
    if kind not in _THINKING:
        raise MessagesError(f"thinking.type: Input should be one of {', '.join(_THINKING)}.")
    if kind != "enabled":
        return {}
    budget = _int(_field(thinking, "budget_tokens", "thinking"), "thinking.budget_tokens", 1)
    return {"reasoning_effort": "low" if budget < 4096 else "medium" if budget < 16384 else "high"}


def _output_config(config: dict) -> dict:
    chat: dict[str, Any] = {}
    if config.get("effort") is not None:
        effort = _str(config["effort"], "output_config.effort")
        if effort not in _EFFORTS:
            raise MessagesError(f"output_config.effort: Input should be one of {', '.join(_EFFORTS)}.")
        chat["reasoning_effort"] = _EFFORTS[effort]
    if config.get("format") is not None:
        fmt = _obj(config["format"], "output_config.format")
        if _field(fmt, "type", "output_config.format") != "json_schema":
            raise MessagesError("output_config.format.type: Input should be 'json_schema'.")
        schema = _obj(_field(fmt, "schema", "output_config.format"), "output_config.format.schema")
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return chat


def _system_text(system: Any, where: str) -> str:
    if isinstance(system, str):
        return system
    texts = []
    for i, block in enumerate(_list(system, where)):
        at = f"{where}.{i}"
        if _field(_obj(block, at), "type", at) != "text":
            raise MessagesError(f"{at}.type: Input should be 'text'.")
        texts.append(_str(_field(block, "text", at), f"{at}.text"))
    return "\n".join(texts)


class _Messages:
    """Chat messages built from Anthropic turns, in order, with the tool_use ids seen so far."""

    def __init__(self) -> None:
        self.out: list[dict] = []
        self.tool_use_ids: set[str] = set()

    def add(self, message: Any, where: str) -> None:
        _obj(message, where)
        role = _str(_field(message, "role", where), f"{where}.role")
        if role not in _BLOCK_KINDS:
            raise MessagesError(f"{where}.role: Input should be 'user', 'assistant' or 'system'.")
        content = _field(message, "content", where)
        if role == "system":
            self.out.append({"role": "system", "content": _system_text(content, f"{where}.content")})
            return
        if isinstance(content, str):
            self.out.append({"role": role, "content": content})
            return
        if not _list(content, f"{where}.content"):
            raise MessagesError(f"{where}.content: at least one content block is required.")
        blocks = []
        for j, block in enumerate(content):
            at = f"{where}.content.{j}"
            kind = _str(_field(_obj(block, at), "type", at), f"{at}.type")
            if kind not in _BLOCK_KINDS[role]:
                raise MessagesError(f"{at}.type: block type {kind!r} is not supported in a {role} message here; "
                                    f"expected one of {', '.join(_BLOCK_KINDS[role])}.")
            blocks.append((kind, block, at))
        if role == "assistant":
            self._assistant(blocks)
        else:
            self._user(blocks)

    def _assistant(self, blocks: list[tuple[str, dict, str]]) -> None:
        texts, calls = [], []
        for kind, block, at in blocks:
            if kind == "text":
                texts.append(_str(_field(block, "text", at), f"{at}.text"))
            elif kind == "tool_use":
                call_id = _str(_field(block, "id", at), f"{at}.id")
                name = _str(_field(block, "name", at), f"{at}.name")
                arguments = orjson.dumps(_obj(_field(block, "input", at), f"{at}.input")).decode()
                calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}})
                self.tool_use_ids.add(call_id)
            # thinking blocks: chat has no slot for them (see the module's docstring)
        if not texts and not calls:
            return
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
        if calls:
            message["tool_calls"] = calls
        self.out.append(message)

    def _user(self, blocks: list[tuple[str, dict, str]]) -> None:
        results: list[dict] = []
        parts: list[dict] = []
        for kind, block, at in blocks:
            if kind == "tool_result":
                results.append(self._tool_result(block, at, parts))
        for kind, block, at in blocks:
            if kind != "tool_result":
                parts.append(_part(kind, block, at))
        self.out.extend(results)
        if parts:
            self.out.append({"role": "user", "content": parts})

    def _tool_result(self, block: dict, where: str, parts: list[dict]) -> dict:
        call_id = _str(_field(block, "tool_use_id", where), f"{where}.tool_use_id")
        if call_id not in self.tool_use_ids:
            raise MessagesError(f"{where}.tool_use_id: no earlier tool_use block has the id {call_id!r}; each "
                                "tool_result must answer a tool_use of an earlier assistant message.")
        content = block.get("content")
        texts = []
        if isinstance(content, str):
            texts.append(content)
        elif content is not None:
            for k, inner in enumerate(_list(content, f"{where}.content")):
                at = f"{where}.content.{k}"
                kind = _str(_field(_obj(inner, at), "type", at), f"{at}.type")
                if kind == "text":
                    texts.append(_str(_field(inner, "text", at), f"{at}.text"))
                elif kind in ("image", "document"):
                    parts.append(_part(kind, inner, at))    # chat's tool messages carry text only
                else:
                    raise MessagesError(f"{at}.type: block type {kind!r} is not supported in a tool_result here; "
                                        "expected one of text, image, document.")
        text = "\n".join(texts)
        if block.get("is_error") is not None and _need(block["is_error"], bool, f"{where}.is_error", "a boolean"):
            text = "Error: " + text
        return {"role": "tool", "tool_call_id": call_id, "content": text}


def _part(kind: str, block: dict, where: str) -> dict:
    """A user content block as a chat content part."""
    if kind == "text":
        return {"type": "text", "text": _str(_field(block, "text", where), f"{where}.text")}
    source = _obj(_field(block, "source", where), f"{where}.source")
    at = f"{where}.source"
    source_kind = _str(_field(source, "type", at), f"{at}.type")
    if kind == "image":
        if source_kind == "base64":
            media_type = _str(_field(source, "media_type", at), f"{at}.media_type")
            if media_type not in _IMAGE_TYPES:
                raise MessagesError(f"{at}.media_type: Input should be one of {', '.join(_IMAGE_TYPES)}.")
            url = f"data:{media_type};base64,{_str(_field(source, 'data', at), f'{at}.data')}"
        elif source_kind == "url":
            url = _str(_field(source, "url", at), f"{at}.url")
        else:
            raise _unsupported(f"{at}.type", f"An image source of type {source_kind!r}")
        return {"type": "image_url", "image_url": {"url": url}}
    if source_kind == "base64":
        if _field(source, "media_type", at) != "application/pdf":
            raise MessagesError(f"{at}.media_type: Input should be 'application/pdf'.")
        data = _str(_field(source, "data", at), f"{at}.data")
        title = block.get("title")
        filename = _str(title, f"{where}.title") if title else "document.pdf"
        return {"type": "file", "file": {"filename": filename, "file_data": f"data:application/pdf;base64,{data}"}}
    if source_kind == "text":
        return {"type": "text", "text": _str(_field(source, "data", at), f"{at}.data")}
    raise _unsupported(f"{at}.type", f"A document source of type {source_kind!r}")


def _tools(raw: Any) -> list[dict]:
    out = []
    for i, tool in enumerate(_list(raw, "tools")):
        where = f"tools.{i}"
        _obj(tool, where)
        kind = tool.get("type")
        if kind is not None and _str(kind, f"{where}.type") != "custom":
            name = tool.get("name")
            named = f" {name!r}" if isinstance(name, str) else ""
            raise MessagesError(f"{where}: server tool{named} of type {kind!r} is not supported by this gateway; "
                                "only client tools (name, description, input_schema) can be served here.")
        function: dict[str, Any] = {"name": _str(_field(tool, "name", where), f"{where}.name")}
        if tool.get("description") is not None:
            function["description"] = _str(tool["description"], f"{where}.description")
        function["parameters"] = _obj(_field(tool, "input_schema", where), f"{where}.input_schema")
        if tool.get("strict") is not None:
            function["strict"] = _need(tool["strict"], bool, f"{where}.strict", "a boolean")
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(raw: Any, has_tools: bool) -> dict:
    choice = _obj(raw, "tool_choice")
    kind = _str(_field(choice, "type", "tool_choice"), "tool_choice.type")
    if kind == "tool":
        chat: dict[str, Any] = {"tool_choice": {"type": "function", "function": {
            "name": _str(_field(choice, "name", "tool_choice"), "tool_choice.name")}}}
    elif kind in _TOOL_CHOICES:
        chat = {"tool_choice": _TOOL_CHOICES[kind]}
    else:
        raise MessagesError("tool_choice.type: Input should be one of auto, any, tool, none.")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and _need(disable, bool, "tool_choice.disable_parallel_tool_use", "a boolean"):
        chat["parallel_tool_calls"] = False
    # chat backends refuse a tool choice without tools; without tools the model can call nothing anyway
    return chat if has_tools else {}


# --- chat answer -> message ---

def message_from_chat(chat: dict, *, message_id: str, model: str) -> dict:
    """The Anthropic `message` for a whole `chat.completion` answer."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message: dict = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content: list[dict] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = "".join(t for t in (message.get("content"), message.get("refusal")) if isinstance(t, str))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            function = _dict_in(call, "function")
            content.append(tool_use_block(call.get("id"), function.get("name"), tool_input(function.get("arguments"))))
    has_calls = any(block["type"] == "tool_use" for block in content)
    reason, sequence = stop_reason(choice.get("finish_reason"), has_calls, _matched_stop(choice),
                                   bool(message.get("refusal")))
    return {"id": message_id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": reason, "stop_sequence": sequence, "usage": message_usage(chat.get("usage"))}


def tool_use_block(call_id: Any, name: Any, input: dict) -> dict:
    return {"type": "tool_use", "id": call_id if isinstance(call_id, str) and call_id else new_id("toolu_"),
            "name": name if isinstance(name, str) else "", "input": input}


def tool_input(arguments: Any) -> dict:
    """A tool call's arguments as Anthropic's `input`: the JSON object, or {} when they are not one."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = exact_json.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _matched_stop(choice: dict) -> str | None:
    """The stop sequence that ended the answer, where the backend tells it: vLLM's `stop_reason`, SGLang's
    `matched_stop` (an integer there is a stop token, not a sequence)."""
    for key in ("stop_reason", "matched_stop"):
        if isinstance(choice.get(key), str):
            return choice[key]
    return None


def stop_reason(finish_reason: Any, has_tool_calls: bool, matched_stop: str | None = None,
                refused: bool = False) -> tuple[str, str | None]:
    """Anthropic's (`stop_reason`, `stop_sequence`) for a chat finish."""
    if finish_reason in ("length", "content_filter"):
        return _FINISH[finish_reason], None
    if has_tool_calls:
        return "tool_use", None     # some backends end tool calls with "stop"
    if refused:
        return "refusal", None
    if finish_reason == "stop" and matched_stop is not None:
        return "stop_sequence", matched_stop
    return _FINISH.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn", None


def message_usage(usage: Any, input_tokens_estimate: int = 0) -> dict:
    """Chat usage in Anthropic's terms: cached prompt tokens are counted apart from `input_tokens`."""
    if not isinstance(usage, dict):
        return {"input_tokens": input_tokens_estimate, "output_tokens": 0, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0}
    details = _dict_in(usage, "prompt_tokens_details")
    cached, written = _count(details.get("cached_tokens")), _count(details.get("cache_write_tokens"))
    # chat's prompt_tokens holds cache reads and writes; Anthropic counts each apart
    return {"input_tokens": max(0, _count(usage.get("prompt_tokens")) - cached - written),
            "output_tokens": _count(usage.get("completion_tokens")),
            "cache_creation_input_tokens": written, "cache_read_input_tokens": cached}


def _dict_in(obj: dict, key: str) -> dict:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
