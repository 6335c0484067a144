"""The chat stream as Anthropic Messages events: recorded chat streams from tests/data/messages/ go through the
`StreamTranslator`; every event must parse with the official `anthropic` SDK, blocks must open, fill and close
in order, the SDK's own stream accumulator must rebuild the message that `message_from_chat` makes from the
same reply as a whole, and that message must be a valid `anthropic.types.Message`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from anthropic import Anthropic
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from gateway.messages.events import StreamTranslator
from gateway.messages.translate import message_from_chat

DATA = Path(__file__).resolve().parents[1] / "data" / "messages"
CASES = ["text", "parallel_tool_calls", "text_then_tool_call", "length", "reasoning_content", "stop_sequence",
         "sequential_tool_calls"]
EVENTS = TypeAdapter(RawMessageStreamEvent)


def stream_of(name: str) -> bytes:
    return (DATA / f"{name}.sse").read_bytes()


def whole(name: str) -> dict:
    return message_from_chat(json.loads((DATA / f"{name}.json").read_text()), message_id="msg_1", model="m")


def translate(sse: bytes, pieces: list[bytes] | None = None, estimate: int = 0) -> tuple[StreamTranslator, list]:
    """The events for a chat stream fed in `pieces` (each holding whole events); one piece by default."""
    translator = StreamTranslator(message_id="msg_1", model="m", input_tokens_estimate=estimate)
    out = translator.start() + b"".join(translator.feed(piece) for piece in pieces or [sse]) + translator.finish()
    return translator, parse(out)


def parse(sse: bytes) -> list[dict]:
    events = []
    for block in sse.split(b"\n\n")[:-1]:
        name, data = block.split(b"\n")
        event = orjson.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + event["type"].encode()
        events.append(event)
    assert sse.endswith(b"\n\n")
    return events


def accumulated(events: list[dict]) -> dict:
    """The message the anthropic SDK's stream reader builds from the events."""
    snapshot = None
    buffers: dict[int, bytes] = {}
    for event in events:
        if event["type"] != "ping":
            snapshot = accumulate_event(event=EVENTS.validate_python(event), current_snapshot=snapshot,
                                        json_bufs=buffers)
    assert snapshot is not None
    return snapshot.to_dict(mode="json", exclude_none=True)


def without_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nones(v) for v in value]
    return value


@pytest.mark.parametrize("name", CASES)
def test_every_event_parses_with_the_sdk(name):
    _, events = translate(stream_of(name))
    assert [e["type"] for e in events[:2]] == ["message_start", "ping"]
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    for event in events[2:]:
        EVENTS.validate_python(event)
    start = EVENTS.validate_python(events[0])
    assert start.message.content == [] and start.message.stop_reason is None


@pytest.mark.parametrize("name", CASES)
def test_the_sdks_accumulator_rebuilds_the_whole_message(name):
    translator, events = translate(stream_of(name))
    expected = whole(name)
    assert without_nones(accumulated(events)) == without_nones(expected)
    assert translator.message == expected
    Message.model_validate(translator.message)
    Message.model_validate(expected)


@pytest.mark.parametrize("name", CASES)
def test_blocks_open_fill_and_close_in_order(name):
    translator, events = translate(stream_of(name))
    blocks = [e for e in events if e["type"].startswith("content_block")]
    indexes = [e["index"] for e in blocks]
    assert indexes == sorted(indexes)    # one block at a time, never interleaved
    for index, block in enumerate(translator.message["content"]):
        mine = [e["type"] for e in blocks if e["index"] == index]
        assert mine[0] == "content_block_start" and mine[-1] == "content_block_stop"
        assert set(mine[1:-1]) <= {"content_block_delta"}
        if block["type"] == "tool_use":
            start = next(e for e in blocks if e["index"] == index)
            assert start["content_block"]["input"] == {} and start["content_block"]["id"] == block["id"]


@pytest.mark.parametrize("name", CASES)
def test_how_the_stream_is_cut_does_not_matter(name):
    sse = stream_of(name)
    one_by_one = [block + b"\n\n" for block in sse.split(b"\n\n")[:-1]]
    in_threes = [b"".join(one_by_one[i:i + 3]) for i in range(0, len(one_by_one), 3)]
    expected = translate(sse)[1]
    for pieces in (one_by_one, in_threes):
        assert translate(sse, pieces)[1] == expected


def test_interleaved_tool_calls_stream_one_block_at_a_time_with_the_upstreams_arguments():
    translator, events = translate(stream_of("parallel_tool_calls"))
    recorded = json.loads((DATA / "parallel_tool_calls.json").read_text())["choices"][0]["message"]["tool_calls"]
    for index, call in enumerate(recorded):
        fragments = [e["delta"]["partial_json"] for e in events
                     if e["type"] == "content_block_delta" and e["index"] == index]
        assert "".join(fragments) == call["function"]["arguments"]
    # the first call streams live; the second was buffered meanwhile and opens with what it has so far
    assert len([e for e in events if e["type"] == "content_block_delta" and e["index"] == 0]) == 4
    assert [b["id"] for b in translator.message["content"]] == [c["id"] for c in recorded]


def test_a_call_that_follows_a_whole_one_streams_live():
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x": 1}'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g"}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": '{"y"'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": ": 2}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    translator, events = translate(b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks))
    kinds = [(e["type"], e.get("index")) for e in events[2:-2]]
    assert kinds == [("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
                     ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1),
                     ("content_block_stop", 1)]
    assert [b["input"] for b in translator.message["content"]] == [{"x": 1}, {"y": 2}]
    assert translator.message["stop_reason"] == "tool_use"


def test_usage_and_stop_come_in_the_message_delta():
    translator, events = translate(stream_of("parallel_tool_calls"), estimate=70)
    assert events[0]["message"]["usage"] == {"input_tokens": 70, "output_tokens": 0,
                                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    assert events[-2] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                          "usage": {"output_tokens": 51, "input_tokens": 18, "cache_creation_input_tokens": 0,
                                    "cache_read_input_tokens": 64}}
    assert translator.usage is not None and translator.usage["prompt_tokens"] == 82


def test_a_stop_sequence_the_backend_names_is_the_stop_sequence():
    _, events = translate(stream_of("stop_sequence"))
    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": " 5"}


def test_reasoning_streams_as_a_thinking_block_first():
    translator, events = translate(stream_of("reasoning_content"))
    assert [b["type"] for b in translator.message["content"]] == ["thinking", "text"]
    assert events[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert {e["delta"]["type"] for e in events if e.get("index") == 0 and e["type"] == "content_block_delta"} == {
        "thinking_delta"}


def test_an_empty_stream_ends_the_turn_with_no_content():
    translator, events = translate(b"data: [DONE]\n\n", estimate=5)
    assert [e["type"] for e in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[2]["usage"] == {"output_tokens": 0}
    assert translator.message["content"] == [] and translator.message["stop_reason"] == "end_turn"
    assert translator.message["usage"]["input_tokens"] == 5 and translator.usage is None
    Message.model_validate(translator.message)


def test_chunks_that_say_nothing_give_no_events():
    translator = StreamTranslator(message_id="msg_1", model="m")
    translator.start()
    keepalive = b": keep-alive\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
    assert translator.feed(keepalive) == b"" and translator.feed(b"") == b""
    with pytest.raises(ValueError):
        translator.feed(b"data: {not json\n\n")


def test_a_failure_is_an_error_event_in_anthropics_shape():
    translator = StreamTranslator(message_id="msg_1", model="m")
    head = b"".join(block + b"\n\n" for block in stream_of("text").split(b"\n\n")[:3])
    out = translator.start() + translator.feed(head) + translator.fail("overloaded_error", "Upstream is overloaded.")
    events = parse(out)
    assert events[-1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Upstream is overloaded."}}
    ErrorResponse.model_validate(events[-1])
    assert translator.message["content"] == [{"type": "text", "text": "Hello! How c"}]


def test_the_sdk_reads_the_stream_as_it_reads_anthropics():
    """The SDK's own SSE decoder and MessageStream, over the bytes as they would go on the wire."""
    _, events = translate(stream_of("text_then_tool_call"))
    body = b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)
    transport = httpx2.MockTransport(lambda request: httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, content=body))
    client = Anthropic(api_key="x", base_url="http://gateway.test", http_client=httpx2.Client(transport=transport))
    with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert final.to_dict(mode="json", exclude_none=True) == without_nones(whole("text_then_tool_call"))


# --- any interleaving of tool call fragments: whole blocks in order, each input exactly the upstream's ---

_ARGS = st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=6) | st.booleans(), max_size=3)


@st.composite
def _streams(draw: Any) -> tuple[list[dict], str, list[dict]]:
    """Chat chunks: optional text, then tool calls whose arguments come in random pieces, randomly interleaved."""
    text = draw(st.text(max_size=10))
    calls = draw(st.lists(_ARGS, max_size=4))
    pieces = []
    for args in calls:
        arguments = json.dumps(args)
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(arguments) - 1)), max_size=4)))
        pieces.append([arguments[a:b] for a, b in zip([0, *cuts], [*cuts, len(arguments)], strict=True)])
    order = draw(st.permutations([i for i, p in enumerate(pieces) for _ in p]))
    first = list(dict.fromkeys(order))    # chat starts calls in index order: number them as they start
    order = [first.index(i) for i in order]
    calls, pieces = [calls[i] for i in first], [pieces[i] for i in first]
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]}]
    sent = [0] * len(calls)
    for i in order:
        fragment: dict = {"index": i, "function": {"arguments": pieces[i][sent[i]]}}
        if sent[i] == 0:
            fragment |= {"id": f"call_{i}", "type": "function"}
            fragment["function"]["name"] = f"f{i}"
        sent[i] += 1
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}]})
    return chunks, text, calls


@settings(max_examples=300, deadline=None)
@given(_streams())
def test_any_interleaving_gives_whole_blocks_with_the_upstreams_arguments(stream):
    chunks, text, calls = stream
    translator, events = translate(b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks))
    blocks = [e["index"] for e in events if e["type"].startswith("content_block")]
    assert blocks == sorted(blocks)
    message = translator.message
    assert without_nones(accumulated(events)) == without_nones(message)
    Message.model_validate(message)
    tools = [b for b in message["content"] if b["type"] == "tool_use"]
    assert [(b["id"], b["name"], b["input"]) for b in tools] == [(f"call_{i}", f"f{i}", args)
                                                                 for i, args in enumerate(calls)]
    assert [b["type"] for b in message["content"]] == ["text"] * bool(text) + ["tool_use"] * len(calls)


# --- any chat chunks: valid events and a valid message, never a crash ---

_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                 max_size=3), max_leaves=8)


def _maybe(valid: Any) -> Any:
    return st.integers(0, 5).flatmap(lambda k: _JSON if k == 0 else valid)


_FRAGMENT = _maybe(st.fixed_dictionaries({"index": _maybe(st.integers(0, 2))}, optional={
    "id": _maybe(st.sampled_from(["c0", "c1"])), "function": _maybe(st.fixed_dictionaries({}, optional={
        "name": _maybe(st.sampled_from(["f", "g"])), "arguments": _maybe(st.sampled_from(['{"a"', ": 1}", "{}", ""]))
    }))}))
_DELTA = _maybe(st.fixed_dictionaries({}, optional={
    "content": _maybe(st.text(max_size=4)), "reasoning_content": _maybe(st.text(max_size=4)),
    "refusal": _maybe(st.text(max_size=4)), "tool_calls": _maybe(st.lists(_FRAGMENT, max_size=2))}))
_CHUNK = _maybe(st.fixed_dictionaries({"choices": _maybe(st.lists(_maybe(st.fixed_dictionaries(
    {"delta": _DELTA}, optional={"finish_reason": _maybe(st.sampled_from(["stop", "length", "tool_calls"])),
                                 "stop_reason": _maybe(st.text(max_size=3))})), max_size=1))},
    optional={"usage": _maybe(st.fixed_dictionaries({"prompt_tokens": _maybe(st.integers(0, 99)),
                                                     "completion_tokens": _maybe(st.integers(0, 99))}))}))


@settings(max_examples=300, deadline=None)
@given(st.lists(_CHUNK, max_size=8))
def test_any_chunks_give_valid_events_and_a_valid_message(chunks):
    translator, events = translate(b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks))
    for event in events:
        if event["type"] != "ping":
            EVENTS.validate_python(event)
    blocks = [e["index"] for e in events if e["type"].startswith("content_block")]
    assert blocks == sorted(blocks)
    Message.model_validate(translator.message)
