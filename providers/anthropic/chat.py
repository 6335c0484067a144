"""An OpenAI chat request as an Anthropic Messages request (pure).

What cannot be honoured is refused with a 400 naming the parameter, before
anything is sent; harmless hints Anthropic has no knob for are dropped.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic import messages
from providers.anthropic.api import Options
from providers.chat_format import function_tools, max_tokens, single_choice, stop_list
from providers.errors import BadRequest

# Parameters whose answer the client would rely on, and Anthropic cannot give.
_REFUSED = {
    "logprobs": "Anthropic returns no log probabilities",
    "top_logprobs": "Anthropic returns no log probabilities",
    "logit_bias": "Anthropic has no token biasing",
    "audio": "this provider answers text only",
    "functions": "send functions as 'tools'",
    "function_call": "send 'tool_choice' with 'tools'",
    "web_search_options": "web search is not translated for this provider",
}
# Dropped without a word: sampling and service hints with no Anthropic counterpart
# (presence_penalty, frequency_penalty, seed, service_tier, store, metadata,
# prediction, reasoning_effort, verbosity) and anything else not read below.

JSON_ONLY = ("Respond with one valid JSON object and nothing else: no prose before or after it, "
             "no Markdown code fences.")


def body(data: dict[str, Any], model: str, options: Options, provider: str, stream: bool) -> bytes:
    single_choice(data, provider)
    _refuse(data, provider)
    system, turns = messages.translate(data["messages"])
    if not turns:
        raise BadRequest("Anthropic needs at least one user or assistant message with content", param="messages")
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens(data) or options.default_max_tokens}
    instruction, output_format = _response_format(data.get("response_format"), options)
    if instruction:
        system.append({"type": "text", "text": instruction})
    if system:
        out["system"] = system
    out["messages"] = turns
    _sampling(data, out)
    tools = _tools(data, options)
    if tools:
        out["tools"] = tools
    choice = _tool_choice(data, tools)
    if choice:
        out["tool_choice"] = choice
    if output_format:
        out["output_config"] = {"format": output_format}
    user = data.get("safety_identifier") or data.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise BadRequest("'user' must be a string", param="user")
        out["metadata"] = {"user_id": user}
    if stream:
        out["stream"] = True
    return orjson.dumps(out)


def _refuse(data: dict[str, Any], provider: str) -> None:
    for name, why in _REFUSED.items():
        if data.get(name):          # false, 0, null and {} ask for nothing
            raise BadRequest(f"'{name}' is not supported by provider '{provider}': {why}", param=name,
                             provider=provider, code="unsupported_parameter")
    modalities = data.get("modalities")
    if modalities and any(m != "text" for m in modalities):
        raise BadRequest(f"provider '{provider}' answers text only; 'modalities' must be [\"text\"]",
                         param="modalities", provider=provider, code="unsupported_parameter")


def _sampling(data: dict[str, Any], out: dict[str, Any]) -> None:
    stop = stop_list(data)
    if stop:
        if not all(isinstance(s, str) for s in stop):
            raise BadRequest("'stop' must be a string or an array of strings", param="stop")
        out["stop_sequences"] = stop
    temperature = data.get("temperature")
    if temperature is not None:
        out["temperature"] = min(temperature, 1)     # OpenAI's range is 0..2, Anthropic's 0..1
    if data.get("top_p") is not None:
        out["top_p"] = data["top_p"]
    top_k = data.get("top_k")                        # not OpenAI's, but clients send it as an extra
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        out["top_k"] = top_k


def _tools(data: dict[str, Any], options: Options) -> list[dict[str, Any]]:
    out = []
    for raw, fn in zip(data.get("tools") or [], function_tools(data), strict=True):   # one per tool, or it raised
        tool: dict[str, Any] = {"name": fn["name"], "input_schema": fn["parameters"]}
        if fn["description"]:
            tool["description"] = fn["description"]
        if options.structured_outputs and raw["function"].get("strict") is True:
            tool["strict"] = True
        out.append(tool)
    return out


def _tool_choice(data: dict[str, Any], tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    choice = data.get("tool_choice")
    serial = data.get("parallel_tool_calls") is False
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if serial and tools else None
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict) \
            and isinstance(choice["function"].get("name"), str):
        name = choice["function"]["name"]
        if name not in {t["name"] for t in tools}:
            raise BadRequest(f"'tool_choice' names '{name}', which is not among the request's tools",
                             param="tool_choice")
        out = {"type": "tool", "name": name}
    else:
        raise BadRequest("'tool_choice' must be 'auto', 'none', 'required' or "
                         "{\"type\": \"function\", \"function\": {\"name\": ...}}", param="tool_choice")
    if out is None or not tools:
        if out is not None and out["type"] == "any":
            raise BadRequest("'tool_choice' is 'required' but the request has no tools", param="tool_choice")
        return None                    # without tools, auto and none are what happens anyway
    if serial and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _response_format(fmt: Any, options: Options) -> tuple[str | None, dict[str, Any] | None]:
    """(a system instruction, a native output format): Anthropic has no JSON mode,
    and takes a schema natively only on models with structured outputs."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None, None
    if kind == "json_object":
        return JSON_ONLY, None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest("'response_format.json_schema.schema' must be a JSON Schema object",
                             param="response_format")
        if options.structured_outputs:
            return None, {"type": "json_schema", "schema": schema}
        name = spec.get("name")
        named = f" (named '{name}')" if isinstance(name, str) and name else ""
        return (f"{JSON_ONLY} It must conform to this JSON Schema{named}:\n"
                f"{orjson.dumps(schema).decode()}"), None
    raise BadRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'",
                     param="response_format")
