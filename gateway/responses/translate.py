"""The Responses API (`POST /v1/responses`) as a dialect over chat completions.

A Responses request becomes a chat request (`to_chat`); answer.py turns a whole chat answer into a Response
object, and `events.StreamTranslator` a chat stream into its events. Pure dict work, no I/O.

What a chat backend cannot do is refused with a 400 rather than dropped in silence:
- hosted tools (web search, file search, code interpreter, MCP, shells, ...) and `custom` tools: a chat
  backend has no free-form tool call, and answering a `function_call` where the client declared a custom
  tool would hand it an item it does not expect;
- `file_id`/`file_url` inputs (no files API), `background: true`, `prompt` and `conversation`;
- an `item_reference` to an item not in `history` or earlier in `input`, and a `function_call_output`
  whose `call_id` no earlier `function_call` has.
What has no slot in chat and no effect on the answer is left out: `reasoning` items sent back (chat has no
place for them; the model reasons afresh), `metadata`, `store`, `include`, `truncation`, `max_tool_calls`,
`previous_response_id` (the caller resolves it into `history`; earlier `instructions` are not carried over,
as OpenAI does). `strict` on a function tool is passed only when given, since most client schemas are not
written for strict mode. `top_logprobs` turns chat's `logprobs` on, which chat needs to answer them.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gateway.errors import ApiError, bad_request
from gateway.responses import tools
from gateway.responses.answer import new_id, text_part
from gateway.responses.tools import HOSTED_TOOLS

__all__ = ["HOSTED_TOOLS", "to_chat", "input_items"]

_ROLES = ("user", "system", "developer", "assistant")
_TOOL_CHOICE_MODES = ("auto", "none", "required")
_FORMATS = ("text", "json_object", "json_schema")
# OpenAI's item id prefixes, as `GET /v1/responses/{id}/input_items` shows them.
_ID_PREFIX = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_", "reasoning": "rs_",
              "custom_tool_call": "ctc_", "custom_tool_call_output": "ctco_"}


# --- checks: each returns the value or raises a 400 naming where it is ---

def _need(value: Any, kind: type | tuple[type, ...], param: str, what: str) -> Any:
    # bool is an int in Python, but not a number in JSON
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise bad_request(f"Invalid type for '{param}': expected {what}.", param=param, code="invalid_type")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _obj(value: Any, param: str) -> dict:
    return _need(value, dict, param, "an object")


def _str(value: Any, param: str) -> str:
    return _need(value, str, param, "a string")


def _list(value: Any, param: str) -> list:
    return _need(value, list, param, "an array")


def _in_range(value: Any, bounds: tuple[float, float] | None, param: str) -> Any:
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise bad_request(f"Invalid '{param}': expected a value between {bounds[0]:g} and {bounds[1]:g}, got {value}.",
                          param=param, code="invalid_value")
    return value


def _missing(param: str) -> ApiError:
    return bad_request(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _field(obj: dict, key: str, param: str) -> Any:
    if obj.get(key) is None:
        raise _missing(f"{param}.{key}")
    return obj[key]


def _unsupported(message: str, param: str) -> ApiError:
    return bad_request(message, param=param, code="unsupported_parameter")


# --- request -> chat ---

# Responses field -> (chat field, JSON type the value must have, that type in words, allowed range)
_PASSED: dict[str, tuple[str, type | tuple[type, ...], str, tuple[float, float] | None]] = {
    "temperature": ("temperature", (int, float), "a number", (0, 2)),
    "top_p": ("top_p", (int, float), "a number", (0, 1)),
    "user": ("user", str, "a string", None),
    "max_output_tokens": ("max_completion_tokens", int, "an integer", (1, 10_000_000)),
    "top_logprobs": ("top_logprobs", int, "an integer", (0, 20)),
    "parallel_tool_calls": ("parallel_tool_calls", bool, "a boolean", None),
    "service_tier": ("service_tier", str, "a string", None),
    "safety_identifier": ("safety_identifier", str, "a string", None),
    "prompt_cache_key": ("prompt_cache_key", str, "a string", None),
}
_CHECKED_ONLY: dict[str, tuple[type, str]] = {  # Responses-only fields: checked for type, not sent to chat
    "metadata": (dict, "an object"), "store": (bool, "a boolean"), "previous_response_id": (str, "a string"),
    "include": (list, "an array"), "max_tool_calls": (int, "an integer"),
}


def to_chat(request: dict, history: Sequence[dict] = ()) -> dict:
    """The chat completions request for a Responses create request; `history` holds the items of earlier
    responses (from `previous_response_id`) that come before this request's `input`."""
    _refuse_unsupported(request)
    chat: dict[str, Any] = {"model": request["model"]}
    messages = _messages(request, history)
    chat["messages"] = messages.out
    for name, (chat_name, kind, what, bounds) in _PASSED.items():
        if request.get(name) is not None:
            chat[chat_name] = _in_range(_need(request[name], kind, name, what), bounds, name)
    for name, (kind, what) in _CHECKED_ONLY.items():
        if request.get(name) is not None:
            _need(request[name], kind, name, what)
    if "top_logprobs" in chat:
        chat["logprobs"] = True     # chat answers top_logprobs only with logprobs on
    declared = [(request["tools"], "tools")] if request.get("tools") is not None else []
    declared_tools, _ = tools.chat_tools([*declared, *messages.additional_tools])
    if declared_tools:
        chat["tools"] = declared_tools
    if request.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(request["tool_choice"])
    if request.get("text") is not None:
        chat.update(_text(_obj(request["text"], "text")))
    if request.get("reasoning") is not None:
        effort = _obj(request["reasoning"], "reasoning").get("effort")
        if effort is not None:
            chat["reasoning_effort"] = _str(effort, "reasoning.effort")
    if request.get("stream") is not None and _need(request["stream"], bool, "stream", "a boolean"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}    # the Response carries usage at its end
    return chat


def _refuse_unsupported(request: dict) -> None:
    if request.get("background") is not None and _need(request["background"], bool, "background", "a boolean"):
        raise _unsupported("Background responses are not supported by this gateway.", "background")
    if request.get("prompt") is not None:
        raise _unsupported("Stored prompt templates are not supported by this gateway.", "prompt")
    if request.get("conversation") is not None:
        raise _unsupported("Conversations are not supported by this gateway; use previous_response_id.",
                           "conversation")
    truncation = request.get("truncation")
    if truncation is not None and truncation not in ("auto", "disabled"):
        raise bad_request("Invalid value for 'truncation': expected 'auto' or 'disabled'.", param="truncation",
                          code="invalid_value")


def _messages(request: dict, history: Sequence[dict]) -> _Messages:
    messages = _Messages()
    if request.get("instructions") is not None:
        messages.out.append({"role": "system", "content": _str(request["instructions"], "instructions")})
    # history was stored by the gateway after its own checks; an error there is named after its source
    messages.add_all(history, lambda i: "previous_response_id")
    raw = request.get("input")
    if raw is None:
        if not history:
            raise _missing("input")
    elif isinstance(raw, str):
        messages.out.append({"role": "user", "content": raw})
    else:
        messages.add_all(_list(raw, "input"), lambda i: f"input[{i}]")
    if not messages.out:
        raise bad_request("The request has no messages for the model: 'input' is empty.", param="input",
                          code="invalid_value")
    return messages


class _Messages:
    """Chat messages built from Responses items, in order, with the tool calls seen so far."""

    def __init__(self) -> None:
        self.out: list[dict] = []
        self.call_ids: set[str] = set()
        self.by_id: dict[str, dict] = {}      # items by id, for item_reference
        self.additional_tools: list[tuple[Any, str]] = []   # tools declared by `additional_tools` items

    def add_all(self, items: Iterable[Any], param_of: Any) -> None:
        for i, item in enumerate(items):
            self.add(item, param_of(i))

    def add(self, item: Any, param: str) -> None:
        _obj(item, param)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "item_reference":
            item, kind = self._resolve(item, param)
        if isinstance(item.get("id"), str):
            self.by_id[item["id"]] = item
        if kind == "message":
            self.out.append(_message(item, param))
        elif kind == "function_call":
            self._function_call(item, param, _str(_field(item, "arguments", param), f"{param}.arguments"))
        elif kind == "custom_tool_call":
            self._function_call(item, param, tools.custom_arguments(_str(_field(item, "input", param),
                                                                         f"{param}.input")))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            self._function_call_output(item, param)
        elif kind == "additional_tools":
            self.additional_tools.append((item.get("tools"), f"{param}.tools"))
        elif kind == "reasoning":
            pass    # chat has no slot for earlier reasoning; the model reasons afresh
        elif kind is None:
            raise _missing(f"{param}.type")
        else:
            raise bad_request(f"Invalid value for '{param}.type': item type {kind!r} is not supported.",
                              param=f"{param}.type", code="invalid_value")

    def _resolve(self, ref: dict, param: str) -> tuple[dict, Any]:
        ref_id = _str(_field(ref, "id", param), f"{param}.id")
        if ref_id not in self.by_id:
            raise bad_request(f"Item with id '{ref_id}' not found.", param=f"{param}.id", code="invalid_value")
        item = self.by_id[ref_id]
        return item, item.get("type", "message")

    def _function_call(self, item: dict, param: str, arguments: str) -> None:
        call_id = _str(_field(item, "call_id", param), f"{param}.call_id")
        namespace = item.get("namespace")
        if namespace is not None:
            _str(namespace, f"{param}.namespace")
        name = tools.chat_name(_str(_field(item, "name", param), f"{param}.name"), namespace)
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        self.call_ids.add(call_id)
        last = self.out[-1] if self.out else None
        # a reply's text and its calls, or several calls in a row, are one assistant turn in chat
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            self.out.append({"role": "assistant", "content": None, "tool_calls": [call]})

    def _function_call_output(self, item: dict, param: str) -> None:
        call_id = _str(_field(item, "call_id", param), f"{param}.call_id")
        if call_id not in self.call_ids:
            raise bad_request(f"No tool call found for function call output with call_id {call_id}.",
                              param=f"{param}.call_id", code="invalid_value")
        output = _field(item, "output", param)
        if not isinstance(output, str):
            output = _text_of(_list(output, f"{param}.output"), f"{param}.output", ("input_text", "output_text"))
        self.out.append({"role": "tool", "tool_call_id": call_id, "content": output})


def _message(item: dict, param: str) -> dict:
    role = _str(_field(item, "role", param), f"{param}.role")
    if role not in _ROLES:
        raise bad_request(f"Invalid value for '{param}.role': expected one of {', '.join(_ROLES)}.",
                          param=f"{param}.role", code="invalid_value")
    content = _field(item, "content", param)
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = _list(content, f"{param}.content")
    if role == "assistant":
        kinds = ("output_text", "refusal", "input_text")
        return {"role": role, "content": _text_of(parts, f"{param}.content", kinds)}
    return {"role": role, "content": [_input_part(p, f"{param}.content[{i}]") for i, p in enumerate(parts)]}


def _text_of(parts: list, param: str, kinds: tuple[str, ...]) -> str:
    """Text-only parts joined: what chat takes where it takes a plain string."""
    texts = []
    for i, part in enumerate(parts):
        where = f"{param}[{i}]"
        kind = _str(_field(_obj(part, where), "type", where), f"{where}.type")
        if kind not in kinds:
            raise bad_request(f"Invalid value for '{where}.type': expected one of {', '.join(kinds)}.",
                              param=f"{where}.type", code="invalid_value")
        key = "refusal" if kind == "refusal" else "text"
        texts.append(_str(_field(part, key, where), f"{where}.{key}"))
    return "".join(texts)


def _input_part(part: Any, param: str) -> dict:
    kind = _str(_field(_obj(part, param), "type", param), f"{param}.type")
    if kind == "input_text":
        return {"type": "text", "text": _str(_field(part, "text", param), f"{param}.text")}
    if kind == "input_image":
        return _image(part, param)
    if kind == "input_file":
        return _file(part, param)
    raise bad_request(f"Invalid value for '{param}.type': expected one of input_text, input_image, input_file.",
                      param=f"{param}.type", code="invalid_value")


def _image(part: dict, param: str) -> dict:
    if part.get("file_id") is not None:
        raise _unsupported("Images by file_id are not supported by this gateway; send image_url.", f"{param}.file_id")
    url = _str(_field(part, "image_url", param), f"{param}.image_url")
    image = {"url": url}
    if part.get("detail") is not None:
        image["detail"] = _str(part["detail"], f"{param}.detail")
    return {"type": "image_url", "image_url": image}


def _file(part: dict, param: str) -> dict:
    if part.get("file_id") is not None or part.get("file_url") is not None:
        key = "file_id" if part.get("file_id") is not None else "file_url"
        raise _unsupported(f"Files by {key} are not supported by this gateway; send file_data.", f"{param}.{key}")
    file = {"file_data": _str(_field(part, "file_data", param), f"{param}.file_data")}
    if part.get("filename") is not None:
        file["filename"] = _str(part["filename"], f"{param}.filename")
    return {"type": "file", "file": file}


def _tool_choice(raw: Any) -> Any:
    if isinstance(raw, str):
        if raw not in _TOOL_CHOICE_MODES:
            raise bad_request("Invalid value for 'tool_choice': expected auto, none or required.",
                              param="tool_choice", code="invalid_value")
        return raw
    kind = _field(_obj(raw, "tool_choice"), "type", "tool_choice")
    if kind in ("function", "custom"):
        return {"type": "function", "function": {"name": _str(_field(raw, "name", "tool_choice"),
                                                               "tool_choice.name")}}
    if kind == "allowed_tools":
        return _allowed_tools(raw)
    raise _unsupported(f"Tool choice type {kind!r} is not supported by this gateway.", "tool_choice.type")


def _allowed_tools(raw: dict) -> dict:
    mode = _field(raw, "mode", "tool_choice")
    if mode not in ("auto", "required"):
        raise bad_request("Invalid value for 'tool_choice.mode': expected auto or required.",
                          param="tool_choice.mode", code="invalid_value")
    names = []
    for i, tool in enumerate(_list(_field(raw, "tools", "tool_choice"), "tool_choice.tools")):
        param = f"tool_choice.tools[{i}]"
        if _field(_obj(tool, param), "type", param) != "function":
            raise _unsupported("Only function tools can be allowed by this gateway.", f"{param}.type")
        names.append({"type": "function", "function": {"name": _str(_field(tool, "name", param), f"{param}.name")}})
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": names}}


def _text(text: dict) -> dict:
    chat: dict[str, Any] = {}
    if text.get("verbosity") is not None:
        chat["verbosity"] = _str(text["verbosity"], "text.verbosity")
    if text.get("format") is None:
        return chat
    fmt = _obj(text["format"], "text.format")
    kind = _field(fmt, "type", "text.format")
    if kind not in _FORMATS:
        raise bad_request("Invalid value for 'text.format.type': expected text, json_object or json_schema.",
                          param="text.format.type", code="invalid_value")
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = {"name": _str(_field(fmt, "name", "text.format"), "text.format.name"),
                  "schema": _obj(_field(fmt, "schema", "text.format"), "text.format.schema")}
        if fmt.get("description") is not None:
            schema["description"] = _str(fmt["description"], "text.format.description")
        if fmt.get("strict") is not None:
            schema["strict"] = _need(fmt["strict"], bool, "text.format.strict", "a boolean")
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    return chat


# --- input items, as stored and listed ---

def input_items(request: dict) -> list[dict]:
    """The request's `input` as `GET /v1/responses/{id}/input_items` lists it; call it after `to_chat`
    accepted the request. `item_reference` items are kept as given."""
    raw = request.get("input")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    return [_stored_item(item) for item in raw]


def _stored_item(item: dict) -> dict:
    kind = item.get("type", "message")
    stored = {**item, "type": kind}
    if kind in _ID_PREFIX and not isinstance(stored.get("id"), str):
        stored["id"] = new_id(_ID_PREFIX[kind])
    if kind == "message":
        if isinstance(stored["content"], str):
            part_type = "output_text" if stored["role"] == "assistant" else "input_text"
            stored["content"] = [text_part(stored["content"]) if part_type == "output_text"
                                 else {"type": "input_text", "text": stored["content"]}]
        stored.setdefault("status", "completed")
    elif kind in ("function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"):
        stored.setdefault("status", "completed")
    return stored
