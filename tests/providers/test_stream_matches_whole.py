"""For every adapter that translates (Anthropic, Bedrock, Gemini), the same upstream reply gives the same
answer whether it came whole or streamed: a stream of chunks, put back
together, equals the whole answer's message (text, tool call ids, names and
arguments, finish reason, usage). A property over generated replies, each
streamed in randomly cut pieces (tool input that never streams included)."""
from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.anthropic import answer as anthropic_answer
from providers.anthropic.stream import Translator as AnthropicStream
from providers.base import Call
from providers.bedrock import reply as bedrock_reply
from providers.bedrock.stream import ConverseStream
from providers.gemini import answer as gemini_answer
from providers.gemini.stream import GeminiStream

_WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_ARGS = st.dictionaries(st.text(min_size=1, max_size=6),
                        st.one_of(st.integers(-2**53, 2**53), _WORDS, st.booleans()), max_size=3)


@st.composite
def replies(draw) -> dict[str, Any]:
    texts = draw(st.lists(_WORDS, max_size=3))
    calls = draw(st.lists(st.tuples(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), _ARGS), max_size=3))
    truncated = draw(st.booleans()) and not calls
    return {"texts": texts, "calls": [{"id": f"call_{i}", "name": n, "args": a} for i, (n, a) in enumerate(calls)],
            "stop": "tool_use" if calls else ("max_tokens" if truncated else "end_turn"),
            "usage": (draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000)))}


def _cuts(draw, text: str) -> list[str]:
    """`text` in 1..4 pieces, cut anywhere."""
    if len(text) < 2:
        return [text]
    points = sorted(set(draw(st.lists(st.integers(1, len(text) - 1), max_size=3))))
    edges = [0, *points, len(text)]
    return [text[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def _assemble(chunks: list[dict]) -> dict[str, Any]:
    """OpenAI chunks put back together as a message, finish reason and usage."""
    content: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish, usage = None, None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                content.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                got = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                got["id"] = call.get("id") or got["id"]
                fn = call.get("function") or {}
                got["name"] += fn.get("name") or ""
                got["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"content": "".join(content) or None,
            "calls": [{"id": c["id"], "name": c["name"], "arguments": orjson.loads(c["arguments"])}
                      for _, c in sorted(calls.items())],
            "finish": finish, "usage": (usage or {}).get("prompt_tokens"),
            "out": (usage or {}).get("completion_tokens")}


def _whole(body: bytes) -> dict[str, Any]:
    doc = orjson.loads(body)
    choice = doc["choices"][0]
    message = choice["message"]
    return {"content": message.get("content") or None,
            "calls": [{"id": c["id"], "name": c["function"]["name"],
                       "arguments": orjson.loads(c["function"]["arguments"])}
                      for c in message.get("tool_calls") or []],
            "finish": choice["finish_reason"], "usage": doc["usage"]["prompt_tokens"],
            "out": doc["usage"]["completion_tokens"]}


# --- Anthropic Messages -------------------------------------------------------------

def _anthropic_whole(r: dict[str, Any]) -> bytes:
    content = [{"type": "text", "text": t} for t in r["texts"]]
    content += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["args"]} for c in r["calls"]]
    return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": content,
                         "stop_reason": r["stop"], "usage": {"input_tokens": r["usage"][0],
                                                             "output_tokens": r["usage"][1]}})


def _anthropic_events(draw, r: dict[str, Any]) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [],
        "usage": {"input_tokens": r["usage"][0], "output_tokens": 1}}})]
    index = 0
    for text in r["texts"]:
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": {"type": "text", "text": ""}}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                             "delta": {"type": "text_delta", "text": piece}})
                   for piece in _cuts(draw, text)]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for call in r["calls"]:
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": call["id"], "name": call["name"], "input": {}}}))
        streamed = orjson.dumps(call["args"]).decode() if call["args"] or draw(st.booleans()) else ""
        events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                             "delta": {"type": "input_json_delta", "partial_json": piece}})
                   for piece in (_cuts(draw, streamed) if streamed else [])]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": r["stop"]},
                                     "usage": {"output_tokens": r["usage"][1]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


@settings(max_examples=150, deadline=None)
@given(r=replies(), data=st.data())
def test_anthropic_stream_equals_whole_answer(r, data):
    body, _ = anthropic_answer.translate(_anthropic_whole(r), provider="anthropic")
    stream = AnthropicStream({"stream_options": {"include_usage": True}}, "claude", provider="anthropic")
    chunks: list[dict] = []
    for event, doc in _anthropic_events(data.draw, r):
        chunks += stream.feed(event, orjson.dumps(doc))
    chunks += stream.end()
    assert _assemble(chunks) == _whole(body)


# --- Bedrock Converse ---------------------------------------------------------------

_BEDROCK_STOP = {"tool_use": "tool_use", "max_tokens": "max_tokens", "end_turn": "end_turn"}


def _bedrock_whole(r: dict[str, Any]) -> bytes:
    content: list[dict] = [{"text": t} for t in r["texts"]]
    content += [{"toolUse": {"toolUseId": c["id"], "name": c["name"], "input": c["args"]}} for c in r["calls"]]
    return orjson.dumps({"output": {"message": {"role": "assistant", "content": content}},
                         "stopReason": _BEDROCK_STOP[r["stop"]],
                         "usage": {"inputTokens": r["usage"][0], "outputTokens": r["usage"][1],
                                   "totalTokens": sum(r["usage"])}})


def _bedrock_events(draw, r: dict[str, Any]) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = [("messageStart", {"role": "assistant"})]
    index = 0
    for text in r["texts"]:
        events += [("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
                   for piece in _cuts(draw, text)]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for call in r["calls"]:
        events.append(("contentBlockStart", {"contentBlockIndex": index,
                                             "start": {"toolUse": {"toolUseId": call["id"], "name": call["name"]}}}))
        streamed = orjson.dumps(call["args"]).decode() if call["args"] or draw(st.booleans()) else ""
        events += [("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})
                   for piece in (_cuts(draw, streamed) if streamed else [])]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    events.append(("messageStop", {"stopReason": _BEDROCK_STOP[r["stop"]]}))
    events.append(("metadata", {"usage": {"inputTokens": r["usage"][0], "outputTokens": r["usage"][1],
                                          "totalTokens": sum(r["usage"])}}))
    return events


@settings(max_examples=150, deadline=None)
@given(r=replies(), data=st.data())
def test_bedrock_stream_equals_whole_answer(r, data):
    body, _ = bedrock_reply.completion(_bedrock_whole(r), "claude", "bedrock")
    stream = ConverseStream("claude", True, "bedrock")
    chunks: list[dict] = []
    for event, doc in _bedrock_events(data.draw, r):
        chunks += stream.feed(event, orjson.dumps(doc))
    chunks += stream.end()
    assert _assemble(chunks) == _whole(body)


def test_a_tool_call_with_no_input_is_an_empty_object_in_both():
    r = {"texts": [], "calls": [{"id": "call_0", "name": "now", "args": {}}], "stop": "tool_use", "usage": (3, 4)}
    stream = AnthropicStream({}, "claude", provider="anthropic")
    chunks: list[dict] = []
    for event, doc in _anthropic_events(lambda s: False, r):
        chunks += stream.feed(event, orjson.dumps(doc))
    assert _assemble(chunks)["calls"][0]["arguments"] == {}
    body, _ = anthropic_answer.translate(_anthropic_whole(r), provider="anthropic")
    assert orjson.loads(body)["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"


# --- Gemini generateContent -----------------------------------------------------------

def _gemini_doc(parts: list[dict], *, reason: str | None = None, usage: tuple[int, int] | None = None) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if reason:
        candidate["finishReason"] = reason
    doc: dict[str, Any] = {"candidates": [candidate], "responseId": "r1", "modelVersion": "gemini-x"}
    if usage is not None:
        doc["usageMetadata"] = {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1],
                                "totalTokenCount": sum(usage)}
    return doc


def _gemini_parts(r: dict[str, Any]) -> list[dict]:
    return ([{"text": t} for t in r["texts"]]
            + [{"functionCall": {"id": c["id"], "name": c["name"], "args": c["args"]}} for c in r["calls"]])


def _gemini_reason(r: dict[str, Any]) -> str:
    return "MAX_TOKENS" if r["stop"] == "max_tokens" else "STOP"     # Gemini says STOP after calls too


def _gemini_stream(draw, r: dict[str, Any]) -> list[dict]:
    """Text in pieces, each call whole in a chunk of its own (as Gemini streams them), usage at the end."""
    chunks = [_gemini_doc([{"text": piece}]) for text in r["texts"] for piece in _cuts(draw, text)]
    chunks += [_gemini_doc([part]) for part in _gemini_parts(r) if "functionCall" in part]
    chunks.append(_gemini_doc([], reason=_gemini_reason(r), usage=r["usage"]))
    return chunks


@settings(max_examples=150, deadline=None)
@given(r=replies(), data=st.data())
def test_gemini_stream_equals_whole_answer(r, data):
    whole = orjson.dumps(_gemini_doc(_gemini_parts(r), reason=_gemini_reason(r), usage=r["usage"]))
    body, _ = gemini_answer.completion(whole, "gemini-x")
    stream = GeminiStream(Call("chat", b"", {"stream_options": {"include_usage": True}}, "gemini-x", True),
                          provider="gemini")
    chunks: list[dict] = []
    for doc in _gemini_stream(data.draw, r):
        chunks += stream.feed(None, orjson.dumps(doc))
    chunks += stream.end()
    assert _assemble(chunks) == _whole(body)
