"""OpenAI chat requests as Bedrock Converse requests (pure).

Translated: messages (system/developer -> `system`), text and data-URL image
parts, tool calls and tool results, tools and tool_choice, max_tokens /
max_completion_tokens, temperature, top_p, stop, response_format json_schema.
Refused with a 400 (the answer could not be what the client asked for): n > 1,
logprobs / top_logprobs, audio output, response_format json_object, legacy
functions, image URLs that are not data URLs, other content part types,
temperature above 1. Dropped (hints Converse has no field for): seed,
presence_penalty, frequency_penalty, logit_bias, parallel_tool_calls, user,
metadata, store, service_tier, reasoning_effort, prediction.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers import chat_format as cf
from providers.errors import BadRequest

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}


def converse_request(data: dict[str, Any], provider: str) -> bytes:
    """The body of a Converse / ConverseStream call for an OpenAI chat request."""
    _refuse_what_cannot_be_served(data, provider)
    system, messages = _messages(data["messages"])
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference(data)
    if inference:
        body["inferenceConfig"] = inference
    tools = _tool_config(data, messages)
    if tools:
        body["toolConfig"] = tools
    output = _output_config(data.get("response_format"))
    if output:
        body["outputConfig"] = output
    return orjson.dumps(body)


def _refuse_what_cannot_be_served(data: dict[str, Any], provider: str) -> None:
    cf.single_choice(data, provider)
    if data.get("logprobs") or data.get("top_logprobs"):
        raise BadRequest("Bedrock's Converse API returns no log probabilities", param="logprobs",
                         code="unsupported_parameter")
    if data.get("audio") is not None or "audio" in (data.get("modalities") or ()):
        raise BadRequest("Bedrock's Converse API has no audio output", param="modalities",
                         code="unsupported_parameter")
    if data.get("functions") is not None or data.get("function_call") is not None:
        raise BadRequest("'functions' is not supported here; send 'tools' instead", param="functions",
                         code="unsupported_parameter")
    temperature = data.get("temperature")
    if temperature is not None and temperature > 1:
        raise BadRequest(f"Bedrock's temperature ranges from 0 to 1, got {temperature}", param="temperature",
                         code="invalid_value")


# -- messages -----------------------------------------------------------------

def _messages(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages): roles alternate, as Converse requires, by
    merging neighbours of the same role (tool results are the user's turn)."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for i, m in enumerate(items):
        role = m.get("role")
        if role in ("system", "developer"):
            text = cf.text_of(m.get("content"))
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks = _user_blocks(m.get("content"), i)
        elif role == "assistant":
            blocks = _assistant_blocks(m, i)
            role = "assistant"
        elif role == "tool":
            blocks, role = [_tool_result(m, i)], "user"
        else:
            raise BadRequest(f"messages[{i}]: role '{role}' is not supported; use system, developer, user, "
                             "assistant or tool", param=f"messages[{i}].role")
        if not blocks:
            continue                 # Converse rejects empty messages; an empty turn says nothing
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    if not messages:
        raise BadRequest("Bedrock needs at least one user or assistant message with content", param="messages")
    return system, messages


def _user_blocks(content: Any, i: int) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"messages[{i}].content must be a string or an array of content parts",
                         param=f"messages[{i}].content")
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, f"messages[{i}].content[{j}]"))
        else:
            raise BadRequest(f"messages[{i}].content[{j}]: content part type '{kind}' is not supported by "
                             "Bedrock here; send text or image_url parts", param=f"messages[{i}].content")
    return blocks


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = cf.image_url(part)
    parsed = cf.data_url(url)
    if parsed is None:
        raise BadRequest(f"{where}: Bedrock's Converse API takes images as bytes only; send the image as a "
                         "data URL (data:image/png;base64,...), not a link", param="messages",
                         code="unsupported_image_url")
    media_type, payload = parsed
    fmt = IMAGE_FORMATS.get(media_type.lower())
    if fmt is None:
        raise BadRequest(f"{where}: image type '{media_type}' is not supported; use png, jpeg, gif or webp",
                         param="messages")
    return {"image": {"format": fmt, "source": {"bytes": payload}}}


def _assistant_blocks(m: dict[str, Any], i: int) -> list[dict[str, Any]]:
    content = m.get("content")
    if isinstance(content, list):     # text and refusal parts, as OpenAI allows for assistants
        text = "".join(p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict))
    else:
        text = cf.text_of(content)
    blocks: list[dict[str, Any]] = [{"text": text}] if text else []
    for call in m.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not call.get("id") or not isinstance(fn.get("name"), str):
            raise BadRequest(f"messages[{i}].tool_calls: each needs an id and a function name",
                             param=f"messages[{i}].tool_calls")
        blocks.append({"toolUse": {"toolUseId": call["id"], "name": fn["name"],
                                   "input": _arguments(fn.get("arguments"), i)}})
    return blocks


def _arguments(raw: Any, i: int) -> Any:
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise BadRequest(f"messages[{i}].tool_calls: function arguments must be JSON",
                         param=f"messages[{i}].tool_calls") from None


def _tool_result(m: dict[str, Any], i: int) -> dict[str, Any]:
    call_id = m.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"messages[{i}]: a tool message needs its tool_call_id", param=f"messages[{i}].tool_call_id")
    text = cf.text_of(m.get("content"))
    content: list[dict[str, Any]] = []
    if text:
        content.append(_result_json(text) or {"text": text})
    return {"toolResult": {"toolUseId": call_id, "content": content}}


def _result_json(text: str) -> dict[str, Any] | None:
    """A JSON object result goes as `json`, so the model sees structure; anything else as text."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return {"json": doc} if isinstance(doc, dict) else None


# -- parameters ---------------------------------------------------------------

def _inference(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if (limit := cf.max_tokens(data)) is not None:
        out["maxTokens"] = limit
    if data.get("temperature") is not None:
        out["temperature"] = data["temperature"]
    if data.get("top_p") is not None:
        out["topP"] = data["top_p"]
    stop = [s for s in cf.stop_list(data) or () if isinstance(s, str) and s]
    if stop:
        out["stopSequences"] = stop
    return out


def _tool_config(data: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = cf.function_tools(data)
    choice = data.get("tool_choice")
    if not tools:
        if choice not in (None, "none", "auto"):
            raise BadRequest("tool_choice needs tools", param="tool_choice")
        return None
    if choice == "none" and not _uses_tools(messages):
        return None      # Converse has no "none": not offering the tools is how to say it
    config: dict[str, Any] = {"tools": [{"toolSpec": _spec(t)} for t in tools]}
    # "auto" is Converse's default, and models without tool_choice support reject it when sent.
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str) or name not in {t["name"] for t in tools}:
            raise BadRequest("tool_choice must name one of the request's function tools", param="tool_choice")
        config["toolChoice"] = {"tool": {"name": name}}
    elif choice not in (None, "auto", "none"):
        raise BadRequest(f"tool_choice '{choice}' is not supported; use auto, required, none or a function",
                         param="tool_choice")
    return config


def _uses_tools(messages: list[dict[str, Any]]) -> bool:
    # Converse rejects toolUse / toolResult blocks unless the tools are declared,
    # so with "none" in such a conversation the tools stay (and the model may still call one).
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _spec(tool: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": tool["name"], "inputSchema": {"json": tool["parameters"]}}
    if tool["description"]:
        spec["description"] = tool["description"]
    return spec


def _output_config(fmt: Any) -> dict[str, Any] | None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_schema":
        schema = fmt.get("json_schema") or {}
        if not isinstance(schema, dict) or not isinstance(schema.get("schema"), dict):
            raise BadRequest("response_format json_schema needs a 'json_schema.schema' object",
                             param="response_format")
        definition: dict[str, Any] = {"schema": orjson.dumps(schema["schema"]).decode()}
        for key in ("name", "description"):
            if isinstance(schema.get(key), str):
                definition[key] = schema[key]
        return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}
    raise BadRequest(f"response_format '{kind}' is not supported by Bedrock's Converse API; "
                     "use json_schema with a schema", param="response_format", code="unsupported_parameter")
