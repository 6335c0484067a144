"""The chat stream as Responses events: recorded chat streams from tests/data/responses/ go through the
`StreamTranslator`; every event must parse with the official SDK and fit OpenAI's schema, each item must open,
fill and close in order, the SDK's own stream reader must accumulate them, and the final Response must equal the
one `response_from_chat` makes from the same reply as a whole."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.responses.answer import response_from_chat
from gateway.responses.events import StreamTranslator
from tests.responses.schema import validate

DATA = Path(__file__).resolve().parents[1] / "data" / "responses"
CASES = ["text", "parallel_tool_calls", "text_then_tool_call", "length", "reasoning_content", "refusal"]
EVENTS = TypeAdapter(ResponseStreamEvent)
REQUEST = {"model": "gpt-4o", "input": "hi", "stream": True, "instructions": "Be brief.",
           "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}


def stream_of(name: str) -> bytes:
    return (DATA / f"{name}.sse").read_bytes()


def translate(sse: bytes, pieces: list[bytes] | None = None) -> tuple[StreamTranslator, list[dict]]:
    """The events for a chat stream fed in `pieces` (each holding whole events); one piece by default."""
    translator = StreamTranslator(REQUEST, response_id="resp_1", created_at=1764640800, model="gpt-4o")
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


def without_ids(response: dict) -> dict:
    return {**response, "output": [{k: v for k, v in item.items() if k != "id"} for item in response["output"]]}


def check_response(response: dict) -> None:
    validate(response, "Response")
    Response.model_validate(response)


@pytest.mark.parametrize("name", CASES)
def test_every_event_parses_with_the_sdk_and_fits_the_schema(name):
    _, events = translate(stream_of(name))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        EVENTS.validate_python(event)
        validate(event, "ResponseStreamEvent")
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []


@pytest.mark.parametrize("name", CASES)
def test_the_streamed_response_equals_the_whole_one(name):
    completion = json.loads((DATA / f"{name}.json").read_text())
    whole = response_from_chat(completion, REQUEST, response_id="resp_1", created_at=1764640800, model="gpt-4o")
    translator, events = translate(stream_of(name))
    assert without_ids(translator.response) == without_ids(whole)
    assert events[-1]["response"] == translator.response
    assert translator.usage == completion["usage"]
    check_response(translator.response)


@pytest.mark.parametrize("name", CASES)
def test_how_the_stream_is_cut_does_not_matter(name):
    sse = stream_of(name)
    one_by_one = [block + b"\n\n" for block in sse.split(b"\n\n")[:-1]]
    in_threes = [b"".join(one_by_one[i:i + 3]) for i in range(0, len(one_by_one), 3)]
    expected = [strip_ids(e) for e in translate(sse)[1]]
    for pieces in (one_by_one, in_threes):
        assert [strip_ids(e) for e in translate(sse, pieces)[1]] == expected


def strip_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items() if k not in ("id", "item_id")}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


_ITEM_ORDER = {  # event types, in the order an item of each kind goes through them
    "message": ["response.output_item.added", "response.content_part.added", "response.output_text.delta",
                "response.output_text.done", "response.content_part.done", "response.output_item.done"],
    "function_call": ["response.output_item.added", "response.function_call_arguments.delta",
                      "response.function_call_arguments.done", "response.output_item.done"],
    "reasoning": ["response.output_item.added", "response.reasoning_summary_part.added",
                  "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
                  "response.reasoning_summary_part.done", "response.output_item.done"],
}
_REFUSAL = ["response.output_item.added", "response.content_part.added", "response.refusal.delta",
            "response.refusal.done", "response.content_part.done", "response.output_item.done"]


def _squeezed(types: list[str]) -> list[str]:
    """Repeated deltas as one, so the order can be compared."""
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1] or not t.endswith(".delta")]


@pytest.mark.parametrize("name", CASES)
def test_each_item_opens_fills_and_closes_in_order(name):
    translator, events = translate(stream_of(name))
    output = translator.response["output"]
    for index, item in enumerate(output):
        mine = [e for e in events if e.get("output_index") == index]
        order = _REFUSAL if item["type"] == "message" and item["content"][0]["type"] == "refusal" \
            else _ITEM_ORDER[item["type"]]
        assert _squeezed([e["type"] for e in mine]) == order
        assert all(e.get("item_id", item["id"]) == item["id"] for e in mine)
        assert mine[-1]["item"] == item
        if item["type"] == "function_call":
            assert mine[0]["item"]["arguments"] == "" and mine[0]["item"]["status"] == "in_progress"
            assert "".join(e["delta"] for e in mine if e["type"].endswith(".delta")) == item["arguments"]
    closing = events[-1]["type"]
    assert closing == ("response.incomplete" if name == "length" else "response.completed")


def test_interleaved_tool_calls_keep_their_own_arguments():
    translator, events = translate(stream_of("parallel_tool_calls"))
    deltas = [e["output_index"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas[:4] == [0, 1, 0, 1]    # the recording interleaves them
    assert [json.loads(c["arguments"])["city"] for c in translator.response["output"]] == ["Paris", "London"]


@pytest.mark.parametrize("name", CASES)
def test_the_sdks_stream_reader_accumulates_the_events(name):
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=REQUEST["tools"], text_format=omit)
    translator, events = translate(stream_of(name))
    for event in events:
        state.handle_event(EVENTS.validate_python(event))
    final = events[-1]
    if final["type"] == "response.completed":
        completed = state.handle_event(EVENTS.validate_python(final))[-1].response
        assert completed.output_text == Response.model_validate(translator.response).output_text


def test_a_failure_closes_the_stream_with_a_failed_response():
    translator = StreamTranslator(REQUEST, response_id="resp_1", created_at=1, model="gpt-4o")
    head = b"".join(block + b"\n\n" for block in stream_of("text").split(b"\n\n")[:3])
    out = translator.start() + translator.feed(head) + translator.fail("Upstream went away.", "server_error", None)
    events = parse(out)
    failed = events[-1]
    assert failed["type"] == "response.failed" and failed["sequence_number"] == len(events) - 1
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": "Upstream went away."}
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert translator.response == failed["response"]
    for event in events:
        EVENTS.validate_python(event)
        validate(event, "ResponseStreamEvent")
    check_response(translator.response)


@pytest.mark.parametrize("type, code, expected", [
    ("rate_limit_error", "rate_limit_exceeded", "rate_limit_exceeded"), ("rate_limit_error", None,
                                                                         "rate_limit_exceeded"),
    ("upstream_error", "bad_gateway", "server_error"), ("invalid_request_error", "invalid_prompt", "invalid_prompt"),
])
def test_failure_codes_are_ones_openai_answers(type, code, expected):
    translator = StreamTranslator(REQUEST, response_id="resp_1", created_at=1, model="gpt-4o")
    event = parse(translator.fail("no", type, code))[0]
    assert event["response"]["error"]["code"] == expected
    EVENTS.validate_python(event)


def test_an_empty_stream_completes_with_no_output():
    translator, events = translate(b"data: [DONE]\n\n")
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.completed"]
    assert translator.response["output"] == [] and translator.usage is None
    check_response(translator.response)


def test_chunks_that_say_nothing_give_no_events():
    translator = StreamTranslator(REQUEST, response_id="resp_1", created_at=1, model="gpt-4o")
    translator.start()
    keepalive = b": keep-alive\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
    assert translator.feed(keepalive) == b"" and translator.feed(b"") == b""


def test_a_custom_tool_call_streams_as_the_custom_item_the_client_declared():
    """Codex's apply_patch is a custom tool: its call streams as custom_tool_call input, whole, when it ends;
    a namespaced function keeps its namespace; the final Response equals the whole answer's."""
    request = {"model": "gpt-4o", "input": "hi", "stream": True, "tools": [
        {"type": "custom", "name": "apply_patch"},
        {"type": "namespace", "name": "mcp_x", "description": "x", "tools": [{"type": "function", "name": "run"}]}]}
    arguments = orjson.dumps({"input": "*** Begin Patch\n*** End Patch"}).decode()
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "apply_patch", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:9]}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments[9:]}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_2", "type": "function",
             "function": {"name": "mcp_x__run", "arguments": "{}"}}]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    sse = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    translator = StreamTranslator(request, response_id="resp_1", created_at=1, model="gpt-4o")
    events = parse(translator.start() + translator.feed(sse) + translator.finish())
    for event in events:
        EVENTS.validate_python(event)
    kinds = [e["type"] for e in events]
    assert "response.custom_tool_call_input.done" in kinds and "response.function_call_arguments.done" in kinds
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == "*** Begin Patch\n*** End Patch"
    final = translator.response
    assert [(i["type"], i["name"], i.get("namespace")) for i in final["output"]] == [
        ("custom_tool_call", "apply_patch", None), ("function_call", "run", "mcp_x")]
    check_response(final)
    whole = {"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "apply_patch", "arguments": arguments}},
        {"id": "call_2", "type": "function", "function": {"name": "mcp_x__run", "arguments": "{}"}}]}}]}
    expected = response_from_chat(whole, request, response_id="resp_1", created_at=1, model="gpt-4o")
    assert without_ids(final) == without_ids(expected)


@pytest.mark.parametrize("code, type_, expected", [
    ("context_length_exceeded", "invalid_request_error", "context_length_exceeded"),   # codes Codex acts on
    ("insufficient_quota", "insufficient_quota", "insufficient_quota"),
    (None, "rate_limit_error", "rate_limit_exceeded"),
    ("upstream_malformed", "server_error", "server_error"),
])
def test_a_failed_stream_keeps_the_codes_clients_act_on(code, type_, expected):
    translator = StreamTranslator(REQUEST, response_id="resp_1", created_at=1, model="gpt-4o")
    events = parse(translator.start() + translator.fail("It went wrong. Please try again in 2s.", type_, code))
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": expected, "message": "It went wrong. Please try again in 2s."}
