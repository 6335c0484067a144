"""Deterministic OpenAI-shaped answers, built from the request alone.

Same request, same content: tests and load tests can rely on it. Token counts
are word counts (plainly an estimate: this is a mock), used consistently in
`usage` so cost tracking has real numbers to count.
"""
from __future__ import annotations

import array
import base64
import hashlib
import math
import time
from collections.abc import Iterator
from typing import Any

import orjson

_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
          "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):   # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    return sum(len(_text_of(m.get("content")).split()) + 4 for m in messages if isinstance(m, dict))


def reply_words(messages: list[Any], count: int) -> list[str]:
    last = next((_text_of(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    seed = hashlib.sha256(last.encode()).digest()
    return ["mock"] + [_WORDS[seed[i % 32] % len(_WORDS)] for i in range(max(0, count - 1))]


def _tool_call(data: dict[str, Any]) -> dict[str, Any] | None:
    """The function the mock 'decides' to call: the named or required one, or with
    `auto` the first tool while the last message is the user's (not a tool result)."""
    tools = [t for t in data.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    choice = data.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    fn = tools[0].get("function") or {}
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        fn = next((t["function"] for t in tools if (t.get("function") or {}).get("name") == wanted), fn)
    elif choice == "auto":
        messages = data.get("messages") or []
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
            return None
    props = ((fn.get("parameters") or {}).get("properties") or {})
    args = {k: _placeholder(v) for k, v in props.items() if isinstance(v, dict)}
    return {"name": fn.get("name", "tool"), "arguments": orjson.dumps(args).decode()}


def _placeholder(schema: dict[str, Any]) -> Any:
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if not isinstance(kind, str):    # e.g. ["string", "null"]: a list is no dict key
        return None
    return {"string": "mock", "integer": 1, "number": 1.0, "boolean": True,
            "array": [], "object": {}}.get(kind)


def _content(data: dict[str, Any], words: list[str]) -> str:
    text = " ".join(words)
    fmt = data.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return orjson.dumps({"mock": True, "answer": text}).decode()
    return text


class ChatAnswer:
    """What the mock says to one chat request, as a whole body or as chunks."""

    def __init__(self, data: dict[str, Any], model: str, words: int, request_id: str) -> None:
        messages = data.get("messages") or []
        limit = data.get("max_completion_tokens") or data.get("max_tokens")
        cut = limit if isinstance(limit, int) and 0 < limit < words else None
        self.truncated = cut is not None
        self.words = reply_words(messages, words if cut is None else cut)
        self.data = data
        self.model = model
        self.n = data.get("n") or 1
        self.tool = _tool_call(data)
        self.id = "chatcmpl-mock-" + hashlib.sha256(request_id.encode()).hexdigest()[:24]
        self.created = int(time.time())
        self.prompt_tokens = prompt_tokens(messages)
        per_choice = len(self.words) if self.tool is None else len(self.tool["arguments"].split()) + 1
        self.completion_tokens = per_choice * self.n
        self.finish_reason = "tool_calls" if self.tool else ("length" if self.truncated else "stop")

    def usage(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}}

    def _tool_calls(self, i: int) -> list[dict[str, Any]]:
        assert self.tool is not None
        return [{"id": f"call_mock_{i}", "type": "function", "function": dict(self.tool)}]

    def body(self) -> bytes:
        choices = []
        for i in range(self.n):
            message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
            if self.tool:
                message["tool_calls"] = self._tool_calls(i)
            else:
                message["content"] = _content(self.data, self.words)
            choices.append({"index": i, "message": message, "logprobs": None,
                            "finish_reason": self.finish_reason})
        return orjson.dumps({"id": self.id, "object": "chat.completion", "created": self.created,
                             "model": self.model, "system_fingerprint": "fp_mock",
                             "choices": choices, "usage": self.usage()})

    def events(self, pieces: int) -> Iterator[bytes]:
        """SSE events: role, content in `pieces` parts, finish, usage if asked, [DONE]."""
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if self.tool:
            deltas.append({"tool_calls": [{"index": 0, **self._tool_calls(0)[0]}]})
        else:
            text = _content(self.data, self.words)
            step = max(1, math.ceil(len(text) / max(1, pieces)))
            deltas += [{"content": text[at:at + step]} for at in range(0, len(text), step)]
        for delta in deltas:
            yield self._chunk([{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}
                               for i in range(self.n)])
        yield self._chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": self.finish_reason}
                           for i in range(self.n)])
        options = self.data.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            yield self._chunk([], usage=self.usage())
        yield b"data: [DONE]\n\n"

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        doc = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model, "system_fingerprint": "fp_mock", "choices": choices}
        if usage is not None or "stream_options" in self.data:
            doc["usage"] = usage
        return b"data: " + orjson.dumps(doc) + b"\n\n"


def embedding_answer(data: dict[str, Any], model: str, dim: int) -> tuple[bytes, int]:
    """The embeddings list, and the input's token count."""
    raw = data.get("input")     # checked by the gateway: a string, or a list of strings, tokens or token lists
    inputs: list[Any] = raw if isinstance(raw, list) and not (raw and isinstance(raw[0], int)) else [raw]
    as_base64 = data.get("encoding_format") == "base64"
    items, tokens = [], 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += len(text.split()) if isinstance(item, str) else len(item)
        vector = _unit_vector(text, data.get("dimensions") or dim)
        value: Any = base64.b64encode(array.array("f", vector).tobytes()).decode() if as_base64 else vector
        items.append({"object": "embedding", "index": i, "embedding": value})
    return orjson.dumps({"object": "list", "data": items, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}), tokens


def _unit_vector(text: str, dim: int) -> list[float]:
    raw = hashlib.shake_256(text.encode()).digest(dim * 2)
    v = [int.from_bytes(raw[i:i + 2], "little") / 32768.0 - 1.0 for i in range(0, dim * 2, 2)]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]
