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
import sys
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

import orjson

from providers.mock.schema_check import Unsatisfiable
from providers.mock.schema_instance import instance

# What one answer may hold: the mock builds answers on the event loop, so a small
# request must not turn into a huge answer (the gateway answers 400 past these).
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_EMBEDDING_INPUTS = 2048
MAX_EMBEDDING_DIMENSIONS = 4096
MAX_EMBEDDING_VALUES = 65_536       # inputs x dimensions: ~1.4 MB of JSON floats, ~12 ms to build
MAX_TOOL_PROPERTIES = 1000          # a tool's properties given placeholder arguments; the rest are left out
# Text is read in slices of this many characters, so a thread reading a large
# body gives the event loop the GIL back between slices (every ~5 ms).
_SLICE = 65_536


class TooLarge(ValueError):
    """The answer asked for is past the mock's bounds; the message says which."""


class BadFormat(ValueError):
    """`response_format` is malformed, or its schema has no instance the mock can find."""


_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
          "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):   # content parts; a part's `text` of another type counts as none
        return " ".join(t for p in content if isinstance(p, dict) and isinstance(t := p.get("text"), str))
    return ""


def _dict(v: Any) -> dict[str, Any]:
    """`v` if it is an object, else an empty one: optional fields of the wrong type are ignored."""
    return v if isinstance(v, dict) else {}


def _word_count(text: str) -> int:
    """len(text.split()), a slice at a time (one call on 15 MB holds the GIL ~240 ms)."""
    if len(text) <= _SLICE:
        return len(text.split())
    count, in_word = 0, False
    for at in range(0, len(text), _SLICE):
        piece = text[at:at + _SLICE]
        count += len(piece.split()) - (in_word and not piece[0].isspace())   # a word across the cut counts once
        in_word = not piece[-1].isspace()
    return count


def prompt_tokens(messages: list[Any]) -> int:
    return sum(_word_count(_text_of(m.get("content"))) + 4 for m in messages if isinstance(m, dict))


def prompt_seed(messages: list[Any]) -> bytes:
    """A hash of the last user message: what makes one answer differ from another."""
    last = next((_text_of(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    return hashlib.sha256(last.encode("utf-8", "surrogatepass")).digest()


def reply_words(messages: list[Any], count: int) -> list[str]:
    seed = prompt_seed(messages)
    return ["mock"] + [_WORDS[seed[i % 32] % len(_WORDS)] for i in range(max(0, count - 1))]


def _tool_call(data: dict[str, Any]) -> dict[str, Any] | None:
    """The function the mock 'decides' to call: the named or required one, or with
    `auto` the first tool while the last message is the user's and no tool result
    came since the last assistant turn (agents add reminders after results)."""
    raw_tools = data.get("tools")
    fns = [_dict(t.get("function")) for t in raw_tools if isinstance(t, dict) and t.get("type") == "function"] \
        if isinstance(raw_tools, list) else []
    choice = data.get("tool_choice", "auto")
    if not fns or choice == "none":
        return None
    fn = fns[0]
    if isinstance(choice, dict):
        wanted = _dict(choice.get("function")).get("name")
        fn = next((f for f in fns if f.get("name") == wanted), fn)
    elif choice == "auto":
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict) \
                or messages[-1].get("role") != "user" or _answered_tools(messages):
            return None
    props = _dict(_dict(fn.get("parameters")).get("properties"))
    args = {k: _placeholder(v) for k, v in islice(props.items(), MAX_TOOL_PROPERTIES) if isinstance(v, dict)}
    name = fn.get("name")
    return {"name": name if isinstance(name, str) and name else "tool", "arguments": orjson.dumps(args).decode()}


def _answered_tools(messages: list[Any]) -> bool:
    """Whether a tool result came after the last assistant message."""
    for m in reversed(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "tool":
            return True
        if role == "assistant":
            return False
    return False


def _placeholder(schema: dict[str, Any]) -> Any:
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if not isinstance(kind, str):    # e.g. ["string", "null"]: a list is no dict key
        return None
    return {"string": "mock", "integer": 1, "number": 1.0, "boolean": True,
            "array": [], "object": {}}.get(kind)


def _json_schema(fmt: Any) -> tuple[str, dict[str, Any]] | None:
    """`response_format`'s schema and its name, when it asks for one; malformed is a BadFormat.
    Any other `type` is read as plain text, as the mock reads other malformed optional fields."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    spec = fmt.get("json_schema")
    if not isinstance(spec, dict):
        raise BadFormat("'response_format.json_schema' must be an object with a 'name' and a 'schema'")
    name, schema = spec.get("name"), spec.get("schema", {})
    if not isinstance(name, str) or not name:
        raise BadFormat("'response_format.json_schema.name' must be a non-empty string")
    if not isinstance(schema, dict):
        raise BadFormat("'response_format.json_schema.schema' must be a JSON Schema object")
    return name, schema


def _content(data: dict[str, Any], words: list[str], seed: bytes, asked: tuple[str, dict[str, Any]] | None) -> str:
    text = " ".join(words)
    fmt = data.get("response_format")
    if asked and asked[1]:
        name, schema = asked
        try:
            return orjson.dumps(instance(schema, seed)).decode()
        except (Unsatisfiable, orjson.JSONEncodeError) as e:   # e.g. an enum value too deep or large for JSON
            raise BadFormat(f"Invalid schema for response_format '{name[:64]}': {e}") from None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return orjson.dumps({"mock": True, "answer": text}).decode()
    return text


class ChatAnswer:
    """What the mock says to one chat request, as a whole body or as chunks."""

    def __init__(self, data: dict[str, Any], model: str, words: int, request_id: str) -> None:
        messages = data.get("messages")
        if not isinstance(messages, list):
            messages = []
        limit = data.get("max_completion_tokens") or data.get("max_tokens")
        asked = _json_schema(data.get("response_format"))
        structured = asked is not None      # a whole instance, never cut
        cut = limit if isinstance(limit, int) and 0 < limit < words and not structured else None
        self.truncated = cut is not None
        self.words = reply_words(messages, words if cut is None else cut)
        self.data = data
        self.model = model
        n = data.get("n")
        self.n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
        self.tool = _tool_call(data)
        self.content = "" if self.tool else _content(data, self.words, prompt_seed(messages), asked)
        per_choice = len(self.tool["arguments"]) if self.tool else len(self.content)
        if per_choice * self.n > MAX_ANSWER_BYTES:
            raise TooLarge(f"The mock provider answers at most {MAX_ANSWER_BYTES} bytes of content; "
                           f"this request asks for about {per_choice * self.n} ({self.n} choices).")
        self.id = "chatcmpl-mock-" + hashlib.sha256(request_id.encode()).hexdigest()[:24]
        self.created = int(time.time())
        self.prompt_tokens = prompt_tokens(messages)
        if self.tool:
            per_choice = len(self.tool["arguments"].split()) + 1
        else:
            per_choice = max(1, len(self.content.split())) if structured else len(self.words)
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
                message["content"] = self.content
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
            text = self.content
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
    inputs = [x for x in inputs if isinstance(x, (str, list))]
    as_base64 = data.get("encoding_format") == "base64"
    asked = data.get("dimensions")
    dimensions = asked if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0 else dim
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise TooLarge(f"The mock provider embeds at most {MAX_EMBEDDING_INPUTS} inputs per request, "
                       f"got {len(inputs)}.")
    if dimensions > MAX_EMBEDDING_DIMENSIONS:
        raise TooLarge(f"The mock provider's embeddings have at most {MAX_EMBEDDING_DIMENSIONS} dimensions, "
                       f"got {dimensions}.")
    if len(inputs) * dimensions > MAX_EMBEDDING_VALUES:
        raise TooLarge(f"The mock provider answers at most {MAX_EMBEDDING_VALUES} embedding values per request "
                       f"(inputs x dimensions), got {len(inputs)} x {dimensions}.")
    items, tokens = [], 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += len(text.split()) if isinstance(item, str) else len(item)
        vector = _unit_vector(text, dimensions)
        value: Any = base64.b64encode(array.array("f", vector).tobytes()).decode() if as_base64 else vector
        items.append({"object": "embedding", "index": i, "embedding": value})
    return orjson.dumps({"object": "list", "data": items, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}), tokens


def _unit_vector(text: str, dim: int) -> list[float]:
    raw = array.array("H", hashlib.shake_256(text.encode("utf-8", "surrogatepass")).digest(dim * 2))
    if sys.byteorder == "big":
        raw.byteswap()      # the values are little-endian, as before: the same vectors on every machine
    v = [x / 32768.0 - 1.0 for x in raw]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]
