"""OpenAI chat requests as Gemini `generateContent` bodies (pure).

Messages become `contents` (assistant -> role "model", tool results -> a
user turn of `functionResponse` parts), system and developer messages become
`systemInstruction`, tools become `functionDeclarations`, and the sampling
fields become `generationConfig`. What Gemini cannot honour is refused with a
400 before anything is sent.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers.chat_format import data_url, function_tools, image_url, max_tokens, stop_list
from providers.errors import BadRequest
from providers.gemini.schema import gemini_schema

# Gemini 3 refuses a replayed function call without the thought signature it
# came with; this documented value stands in when the client did not keep it
# (see https://ai.google.dev/gemini-api/docs/thought-signatures).
SKIP_SIGNATURE = "skip_thought_signature_validator"

_MIME_BY_EXTENSION = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
                      "gif": "image/gif", "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf"}
_AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mp3"}
_TOOL_CHOICE = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
# Fields that change the answer in ways Gemini has no switch for.
_REFUSED = {"logit_bias": "logit_bias", "audio": "audio output", "prediction": "predicted outputs",
            "web_search_options": "web search", "functions": "legacy 'functions' (use 'tools')",
            "function_call": "legacy 'function_call' (use 'tool_choice')"}
# reasoning_effort as a thinking budget, as Gemini's own OpenAI-compatible endpoint maps it.
_THINKING_BUDGETS = {"none": 0, "low": 1024, "medium": 8192, "high": 24576}


def generate_body(data: dict[str, Any]) -> bytes:
    """The `generateContent` (and `streamGenerateContent`) body for a chat request."""
    _refuse_unsupported(data)
    system, contents = _contents(data.get("messages") or [])
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = function_tools(data)
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in tools]}]
    calling = _function_calling(data.get("tool_choice"), {t["name"] for t in tools})
    if calling:
        body["toolConfig"] = {"functionCallingConfig": calling}
    config = _generation_config(data)
    if config:
        body["generationConfig"] = config
    return orjson.dumps(body)


def _refuse_unsupported(data: dict[str, Any]) -> None:
    for field, what in _REFUSED.items():
        if data.get(field):
            raise BadRequest(f"Gemini does not support {what}", param=field, code="unsupported_parameter")
    if data.get("logprobs"):
        raise BadRequest("Gemini adapter does not return logprobs", param="logprobs", code="unsupported_parameter")
    effort = data.get("reasoning_effort")
    if effort is not None and effort not in _THINKING_BUDGETS:
        raise BadRequest(f"Gemini takes reasoning_effort {', '.join(_THINKING_BUDGETS)}; not {effort!r}",
                         param="reasoning_effort", code="unsupported_parameter")
    modalities = data.get("modalities")
    if modalities and list(modalities) != ["text"]:
        raise BadRequest("Gemini adapter answers with text only", param="modalities", code="unsupported_parameter")


# -- messages -----------------------------------------------------------------

def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}          # tool_call id -> function name, for the results that follow
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object", param="messages")
        role = m.get("role")
        if role in ("system", "developer"):
            text = _text(m.get("content"), i)
            if text:
                system.append({"text": text})
        elif role == "user":
            contents.append({"role": "user", "parts": _user_parts(m.get("content"), i)})
        elif role == "assistant":
            parts = _assistant_parts(m, i, names)
            if parts:                   # Gemini refuses a turn without parts
                contents.append({"role": "model", "parts": parts})
        elif role in ("tool", "function"):
            part = _tool_result(m, i, names)
            last = contents[-1] if contents else None
            # Results of parallel calls go back together, in one user turn.
            if last and last["role"] == "user" and all("functionResponse" in p for p in last["parts"]):
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise BadRequest(f"messages[{i}] has a role Gemini cannot take: {role!r}", param="messages")
    return system, contents


def _text(content: Any, i: int) -> str:
    """Text-only content (system, developer, assistant, tool): a string or text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise BadRequest(f"messages[{i}].content must be a string or an array of parts", param="messages")
    out = []
    for p in content:
        kind = p.get("type") if isinstance(p, dict) else None
        if kind not in ("text", "refusal"):
            raise BadRequest(f"messages[{i}] may hold only text parts here, not {kind!r}", param="messages")
        out.append(p.get(kind) or "")
    return "".join(out)


def _user_parts(content: Any, i: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"messages[{i}].content must be a string or an array of parts", param="messages")
    parts = []
    for p in content:
        kind = p.get("type") if isinstance(p, dict) else None
        if kind == "text":
            parts.append({"text": p.get("text") or ""})
        elif kind == "image_url":
            parts.append(_media(image_url(p)))
        elif kind == "input_audio":
            parts.append(_audio(p.get("input_audio"), i))
        elif kind == "file":
            parts.append(_file(p.get("file"), i))
        else:
            raise BadRequest(f"messages[{i}] holds a content part Gemini cannot take: {kind!r}", param="messages")
    return parts or [{"text": ""}]


def _media(url: str) -> dict[str, Any]:
    inline = data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    if url.startswith(("https://", "http://")):
        return {"fileData": {"mimeType": _guess_mime(url), "fileUri": url}}
    raise BadRequest("image URLs must be https:// URLs or base64 data: URLs", param="messages")


def _guess_mime(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    name = path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return _MIME_BY_EXTENSION.get(ext, "image/jpeg")


def _audio(value: Any, i: int) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("format") not in _AUDIO_FORMATS or not value.get("data"):
        raise BadRequest(f"messages[{i}]: input_audio needs base64 'data' and a 'format' of wav or mp3",
                         param="messages")
    return {"inlineData": {"mimeType": _AUDIO_FORMATS[value["format"]], "data": value["data"]}}


def _file(value: Any, i: int) -> dict[str, Any]:
    data = value.get("file_data") if isinstance(value, dict) else None
    inline = data_url(data) if isinstance(data, str) else None
    if inline is None:
        raise BadRequest(f"messages[{i}]: Gemini takes files as 'file_data' data: URLs (no file ids)",
                         param="messages")
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def _assistant_parts(m: dict[str, Any], i: int, names: dict[str, str]) -> list[dict[str, Any]]:
    text = _text(m.get("content"), i)
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadRequest(f"messages[{i}].tool_calls must be an array", param="messages")
    for k, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"messages[{i}].tool_calls[{k}] needs a function with a name", param="messages")
        if isinstance(call.get("id"), str):
            names[call["id"]] = fn["name"]
        part: dict[str, Any] = {"functionCall": {"name": fn["name"], "args": _arguments(fn.get("arguments"), i, k)}}
        signature = _signature(call)
        if signature or k == 0:         # parallel calls: only the first one carries it
            part["thoughtSignature"] = signature or SKIP_SIGNATURE
        parts.append(part)
    return parts


def _arguments(raw: Any, i: int, k: int) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise BadRequest(f"messages[{i}].tool_calls[{k}].function.arguments is not valid JSON",
                         param="messages") from None
    if not isinstance(args, dict):
        raise BadRequest(f"messages[{i}].tool_calls[{k}].function.arguments must be a JSON object",
                         param="messages")
    return args


def _signature(call: dict[str, Any]) -> str | None:
    """The thought signature the adapter handed out with this call (see answer.tool_call)."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    value = google.get("thought_signature") if isinstance(google, dict) else None
    return value if isinstance(value, str) and value else None


def _tool_result(m: dict[str, Any], i: int, names: dict[str, str]) -> dict[str, Any]:
    if m["role"] == "function":
        name = m.get("name")
    else:
        call_id = m.get("tool_call_id")
        name = (names.get(call_id) if isinstance(call_id, str) else None) or m.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"messages[{i}] answers tool_call_id {m.get('tool_call_id')!r}, which no earlier "
                         "assistant message called", param="messages")
    text = _text(m.get("content"), i)
    try:
        response = orjson.loads(text)
    except orjson.JSONDecodeError:
        response = None
    if not isinstance(response, dict):
        response = {"content": text}
    return {"functionResponse": {"name": name, "response": response}}


# -- tools and generation config ----------------------------------------------

def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool["name"]}
    if tool["description"]:
        out["description"] = tool["description"]
    params = gemini_schema(tool["parameters"], "tools")
    if params.get("properties"):        # Gemini refuses an OBJECT with no properties
        out["parameters"] = params
    return out


def _function_calling(choice: Any, names: set[str]) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return {"mode": _TOOL_CHOICE[choice]} if names else None
    fn = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str):
        raise BadRequest("tool_choice must be 'auto', 'required', 'none' or {\"type\": \"function\", "
                         "\"function\": {\"name\": ...}}", param="tool_choice")
    if name not in names:
        raise BadRequest(f"tool_choice names {name!r}, which is not among the tools", param="tool_choice")
    return {"mode": "ANY", "allowedFunctionNames": [name]}


def _generation_config(data: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field, key in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                       ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if data.get(field) is not None:
            config[key] = data[field]
    if data.get("n") not in (None, 1):
        config["candidateCount"] = data["n"]
    limit = max_tokens(data)
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = stop_list(data)
    if stop:
        config["stopSequences"] = stop
    config.update(_response_format(data.get("response_format")))
    if data.get("reasoning_effort") is not None:
        config["thinkingConfig"] = {"thinkingBudget": _THINKING_BUDGETS[data["reasoning_effort"]]}
    return config


def _response_format(fmt: Any) -> dict[str, Any]:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        out: dict[str, Any] = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            out["responseSchema"] = gemini_schema(schema, "response_format")
        return out
    raise BadRequest("response_format must be text, json_object or json_schema", param="response_format")
