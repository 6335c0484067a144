"""The tools a Responses request declares, as the chat functions a backend
can call, and those calls back as the items the client declared.

- `function` tools map one to one.
- `custom` tools (free-form text input, as Codex's `apply_patch`) become a
  function taking `{"input": string}`; a call comes back as a
  `custom_tool_call` whose `input` is that string.
- `namespace` tools group members (Codex puts each MCP server's tools in
  one): each member becomes a function named `<namespace>__<name>`, and its
  call comes back with `namespace` and the member's own name.
- Tools may also arrive in `additional_tools` input items (newer Codex sends
  them only there): they count as declared, the same as `tools`.
- Hosted tools run on OpenAI's side (web search, file search, code
  interpreter, ...): a chat backend cannot run them, so they are refused with
  a 400 naming them, never dropped.
The first declaration of a name wins; later ones with the same name are left out.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import ApiError, bad_request
from providers import exact_json

SEPARATOR = "__"
HOSTED_TOOLS = frozenset({
    "web_search", "web_search_preview", "web_search_preview_2025_03_11", "file_search", "code_interpreter",
    "computer_use_preview", "computer_use", "image_generation", "mcp", "local_shell", "shell", "apply_patch",
    "tool_search",
})
_CUSTOM_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"],
                      "additionalProperties": False}


@dataclass(frozen=True, slots=True)
class Declared:
    """What a chat function name stands for in the client's terms."""
    kind: str                   # "function" | "custom"
    name: str                   # the tool's own name
    namespace: str | None = None


Names = dict[str, Declared]     # chat function name -> what the client declared


def chat_name(name: str, namespace: str | None) -> str:
    return name if namespace is None else f"{namespace}{SEPARATOR}{name}"


def chat_tools(sources: Iterable[tuple[Any, str]]) -> tuple[list[dict], Names]:
    """The chat `tools` for declarations from each (list, where it came from),
    and what each chat name stands for."""
    tools: list[dict] = []
    names: Names = {}
    for raw, param in sources:
        if not isinstance(raw, list):
            raise bad_request(f"Invalid type for '{param}': expected an array.", param=param, code="invalid_type")
        for i, tool in enumerate(raw):
            _declare(tool, f"{param}[{i}]", None, tools, names)
    return tools, names


def _declare(tool: Any, param: str, namespace: str | None, tools: list[dict], names: Names) -> None:
    if not isinstance(tool, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param=param, code="invalid_type")
    kind = _text(tool, "type", param)
    if kind == "namespace" and namespace is None:
        inner = _text(tool, "name", param)
        members = tool.get("tools")
        if not isinstance(members, list):
            raise bad_request(f"Invalid type for '{param}.tools': expected an array.", param=f"{param}.tools",
                              code="invalid_type")
        for i, member in enumerate(members):
            _declare(member, f"{param}.tools[{i}]", inner, tools, names)
        return
    if kind not in ("function", "custom"):
        raise _refused(kind, param)
    name = _text(tool, "name", param)
    called = chat_name(name, namespace)
    if called in names:
        return
    function: dict[str, Any] = {"name": called}
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise bad_request(f"Invalid type for '{param}.description': expected a string.",
                              param=f"{param}.description", code="invalid_type")
        function["description"] = description
    if kind == "custom":
        function["parameters"] = _CUSTOM_PARAMETERS
    else:
        if tool.get("parameters") is not None:
            if not isinstance(tool["parameters"], dict):
                raise bad_request(f"Invalid type for '{param}.parameters': expected an object.",
                                  param=f"{param}.parameters", code="invalid_type")
            function["parameters"] = tool["parameters"]
        if tool.get("strict") is not None:
            if not isinstance(tool["strict"], bool):
                raise bad_request(f"Invalid type for '{param}.strict': expected a boolean.",
                                  param=f"{param}.strict", code="invalid_type")
            function["strict"] = tool["strict"]
    names[called] = Declared(kind, name, namespace)
    tools.append({"type": "function", "function": function})


def _text(tool: dict, key: str, param: str) -> str:
    value = tool.get(key)
    if value is None:
        raise bad_request(f"Missing required parameter: '{param}.{key}'.", param=f"{param}.{key}",
                          code="missing_required_parameter")
    if not isinstance(value, str):
        raise bad_request(f"Invalid type for '{param}.{key}': expected a string.", param=f"{param}.{key}",
                          code="invalid_type")
    return value


def _refused(kind: str, param: str) -> ApiError:
    if kind in HOSTED_TOOLS:
        message = f"Tool type '{kind}' is a hosted tool this gateway cannot run; declare a function tool instead."
    else:
        message = f"Tool type '{kind}' is not supported by this gateway; use function, custom or namespace tools."
    return bad_request(message, param=param, code="unsupported_parameter")


def declared_names(request: dict) -> Names:
    """What the special chat names of `request` stand for (custom and namespaced
    tools; plain functions need no entry). {} at once when it declares none."""
    sources = [request.get("tools")] if isinstance(request.get("tools"), list) else []
    raw_input = request.get("input")
    if isinstance(raw_input, list):
        sources += [item.get("tools") for item in raw_input
                    if isinstance(item, dict) and item.get("type") == "additional_tools"]
    if not any(isinstance(t, dict) and t.get("type") in ("custom", "namespace")
               for tools in sources if isinstance(tools, list) for t in tools):
        return {}
    try:
        return chat_tools((tools, "tools") for tools in sources)[1]
    except ApiError:        # to_chat accepted the request; nothing here can fail, but answers must not
        return {}


def call_item(item_id: str, call_id: str, name: str, arguments: str, names: Names,
              status: str = "completed") -> dict:
    """The output item for a chat tool call named `name`."""
    declared = names.get(name)
    if declared is None:
        return {"id": item_id, "type": "function_call", "status": status, "arguments": arguments,
                "call_id": call_id, "name": name}
    if declared.kind == "custom":
        item = {"id": item_id, "type": "custom_tool_call", "status": status, "call_id": call_id,
                "name": declared.name, "input": custom_input(arguments)}
    else:
        item = {"id": item_id, "type": "function_call", "status": status, "arguments": arguments,
                "call_id": call_id, "name": declared.name}
    if declared.namespace is not None:
        item["namespace"] = declared.namespace
    return item


def custom_input(arguments: str) -> str:
    """A custom tool's input from its function call's arguments (the raw text
    when a backend did not answer the `{"input": ...}` object it was given)."""
    try:
        doc = exact_json.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    value = doc.get("input") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else arguments


def custom_arguments(text: str) -> str:
    """A custom tool call's input as the function arguments the backend saw."""
    return orjson.dumps({"input": text}).decode()
