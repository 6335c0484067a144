"""OpenAI chat messages as Anthropic's `system` blocks and alternating turns.

Anthropic keeps the system prompt apart from the turns, wants user and
assistant turns to alternate, carries tool calls as `tool_use` blocks in the
assistant's turn and their results as `tool_result` blocks in the next user
turn. So: system and developer messages are hoisted into `system` in order;
consecutive turns of one role (tool results included, which are the user's)
are merged into one.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers import exact_json
from providers.chat_format import data_url, image_url
from providers.errors import BadRequest

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def translate(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system text blocks, turns) for an OpenAI `messages` array."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        role = m.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_blocks(m.get("content"), where))
            continue
        if role == "user":
            blocks, role = _user_blocks(m.get("content"), where), "user"
        elif role == "assistant":
            blocks = _assistant_blocks(m, where)
        elif role == "tool":
            blocks, role = [_tool_result(m, where)], "user"
        else:
            raise BadRequest(f"'{where}': role '{role}' is not supported here; use system, developer, user, "
                             "assistant or tool (functions are sent as tools)", param=f"{where}.role")
        if not blocks:
            continue      # an empty message says nothing, and Anthropic refuses empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    """System, developer and tool content: a string or text parts."""
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"'{where}.content' must be a string or an array of text parts", param=f"{where}.content")
    blocks = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise BadRequest(f"'{where}.content' may only hold text parts here", param=f"{where}.content")
        block = _text(part, where)
        if block:
            blocks.append(block)
    return blocks


def _text(part: dict[str, Any], where: str) -> dict[str, Any] | None:
    text = part.get("text")
    if not isinstance(text, str):
        raise BadRequest(f"a text part in '{where}.content' needs a string 'text'", param=f"{where}.content")
    return _cached(part, {"type": "text", "text": text}) if text else None


def _cached(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    # Anthropic's prompt-caching marker, when the client put it on the part.
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest(f"'{where}.content' must be a string or an array of content parts", param=f"{where}.content")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            block = _text(part, where)
        elif kind == "image_url":
            block = _cached(part, _image(part, where))
        elif kind == "file":
            block = _cached(part, _document(part, where))
        else:
            raise BadRequest(f"content parts of type '{kind}' are not supported by this provider "
                             "(text, image_url and PDF files are)", param=f"{where}.content")
        if block:
            blocks.append(block)
    return blocks


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = image_url(part)
    inline = data_url(url)
    if inline is None:
        if not url.startswith(("https://", "http://")):
            raise BadRequest(f"an image in '{where}' must be an https URL or a base64 data URL",
                             param=f"{where}.content")
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = inline
    if media_type not in _IMAGE_TYPES:
        raise BadRequest(f"images of type '{media_type}' are not supported by this provider "
                         f"(use {', '.join(sorted(_IMAGE_TYPES))})", param=f"{where}.content")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document(part: dict[str, Any], where: str) -> dict[str, Any]:
    """A `file` part holding a PDF as a data URL; uploaded file ids mean nothing to Anthropic."""
    file = part.get("file")
    payload = file.get("file_data") if isinstance(file, dict) else None
    inline = data_url(payload) if isinstance(payload, str) else None
    if inline is None or inline[0] != "application/pdf":
        raise BadRequest(f"a file part in '{where}' must carry a PDF as file_data "
                         "(data:application/pdf;base64,...); file ids are not supported", param=f"{where}.content")
    return {"type": "document", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}


def _assistant_blocks(m: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = m.get("content")
    if isinstance(content, list):
        # An earlier answer may hold refusal parts next to text: both are what the model said.
        content = [{"type": "text", "text": p.get("refusal")} if isinstance(p, dict) and p.get("type") == "refusal"
                   else p for p in content]
    blocks = _text_blocks(content, where)
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadRequest(f"'{where}.tool_calls' must be an array", param=f"{where}.tool_calls")
    blocks.extend(_tool_use(call, f"{where}.tool_calls") for call in calls)
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(call.get("id"), str) or not isinstance(fn.get("name"), str):
        raise BadRequest(f"every entry of '{where}' needs an 'id' and a 'function' with a 'name'", param=where)
    arguments = fn.get("arguments") or "{}"
    try:
        decoded = exact_json.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise BadRequest(f"the arguments of tool call '{call['id']}' in '{where}' are not valid JSON",
                         param=where) from None
    if not isinstance(decoded, dict):
        raise BadRequest(f"the arguments of tool call '{call['id']}' in '{where}' must be a JSON object",
                         param=where)
    return {"type": "tool_use", "id": call["id"], "name": fn["name"], "input": decoded}


def _tool_result(m: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = m.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest(f"'{where}' is a tool message without a 'tool_call_id'", param=f"{where}.tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    text = "".join(b["text"] for b in _text_blocks(m.get("content"), where))
    if text:
        block["content"] = text
    return block
