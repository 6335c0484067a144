"""/v1/responses on translating providers: the Anthropic and Gemini loopback
fakes answer in their own wire formats, the SDK reads OpenAI's Responses."""
from __future__ import annotations

from functools import partial

import orjson
import pytest

from tests.harness import base_config, chat_model, closed_after
from tests.upstreams.anthropic_fake import FakeAnthropic
from tests.upstreams.gemini_fake import FakeGemini
from tests.upstreams.gemini_fake import recorded as gemini_recorded

WEATHER = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}


def _comparable(response) -> dict:
    """A response without what differs between two answers to the same reply (ids, times;
    usage too: the fakes' recorded streams and whole answers were recorded apart)."""
    doc = response.model_dump(exclude_none=True)
    assert doc.pop("usage")["total_tokens"] > 0
    doc.pop("id"), doc.pop("created_at")
    for item in doc["output"]:
        item.pop("id", None)
    return doc


@pytest.fixture
def claude(start_gateway, loop):
    with closed_after(partial(FakeAnthropic, loop)) as make:
        fake = make()
        yield start_gateway(base_config(
            [{"name": "anthropic", "type": "anthropic", "base_url": fake.url, "api_key": fake.api_key}],
            [chat_model("claude", {"provider": "anthropic", "model": "claude-sonnet-4-5"}, retries=0)])), fake


@pytest.fixture
def gemini(start_gateway, loop):
    with FakeGemini(loop) as fake:
        yield start_gateway(base_config(
            [{"name": "gem", "type": "gemini", "base_url": fake.url, "api_key": fake.key}],
            [chat_model("flash", {"provider": "gem", "model": "gemini-2.5-flash"}, retries=0)])), fake


def test_anthropic_answers_and_streams_the_same_response(claude):
    gw, _ = claude
    client = gw.client()
    whole = client.responses.create(model="claude", input="hi", max_output_tokens=100)
    assert whole.status == "completed" and whole.output_text
    with client.responses.stream(model="claude", input="hi", max_output_tokens=100) as stream:
        kinds = [e.type for e in stream]
        streamed = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert _comparable(streamed) == _comparable(whole)


def test_anthropic_tool_round_trip(claude):
    gw, fake = claude
    client = gw.client()
    first = client.responses.create(model="claude", input="weather in Paris?", tools=[WEATHER],
                                    max_output_tokens=200)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and all(c.name == "get_weather" and orjson.loads(c.arguments) for c in calls)
    with client.responses.stream(model="claude", input="weather in Paris?", tools=[WEATHER],
                                 max_output_tokens=200) as stream:
        streamed = stream.get_final_response()
    # (the fake's recorded stream is another reply than its whole answer: compare shapes)
    assert [(i.type, getattr(i, "name", None)) for i in streamed.output] == \
        [(i.type, getattr(i, "name", None)) for i in first.output]
    assert all(orjson.loads(i.arguments) for i in streamed.output if i.type == "function_call")
    second = client.responses.create(model="claude", previous_response_id=first.id, tools=[WEATHER],
                                     max_output_tokens=200, input=[
                                         {"type": "function_call_output", "call_id": c.call_id, "output": "sunny"}
                                         for c in calls])
    assert second.output_text
    sent = orjson.loads(fake.seen[-1].body)      # the conversation rebuilt: the call, then its result
    blocks = [b for m in sent["messages"] if isinstance(m["content"], list) for b in m["content"]]
    assert [b["type"] for b in blocks if b["type"] in ("tool_use", "tool_result")] == \
        ["tool_use"] * len(calls) + ["tool_result"] * len(calls)


def test_gemini_answers_streams_and_calls_tools(gemini):
    gw, fake = gemini
    client = gw.client()
    whole = client.responses.create(model="flash", input="hi")
    with client.responses.stream(model="flash", input="hi") as stream:
        streamed = stream.get_final_response()
    assert whole.output_text and _comparable(streamed) == _comparable(whole)
    fake.chat_body = gemini_recorded("generate_tool_calls.json")
    fake.stream_body = gemini_recorded("stream_tool_calls.sse")
    tools = client.responses.create(model="flash", input="weather?", tools=[WEATHER])
    calls = [item for item in tools.output if item.type == "function_call"]
    assert calls and all(c.call_id and c.name for c in calls)
    with client.responses.stream(model="flash", input="weather?", tools=[WEATHER]) as stream:
        streamed_tools = stream.get_final_response()
    assert [(c.name, c.arguments) for c in streamed_tools.output if c.type == "function_call"] == \
        [(c.name, c.arguments) for c in calls]
