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


def test_azure_v1_takes_responses_natively(start_gateway, loop):
    from tests.upstreams.azure_fake import FakeAzure
    with FakeAzure(loop) as fake:
        gw = start_gateway(base_config(
            [{"name": "az", "type": "azure_openai", "base_url": fake.base, "api_key": fake.key, "api_version": "v1"},
             {"name": "az-dated", "type": "azure_openai", "base_url": fake.base, "api_key": fake.key}],
            [chat_model("az", {"provider": "az", "model": "my-deployment"}),
             chat_model("az-dated", {"provider": "az-dated", "model": "my-deployment"})]))
        r = gw.client().responses.create(model="az", input="hi")
        assert fake.seen[-1].path == "/openai/v1/responses" and r.id == fake.responses_made[-1]
        assert orjson.loads(fake.seen[-1].body)["model"] == "my-deployment"
        gw.client().responses.create(model="az-dated", input="hi")      # dated versions: translated to chat
        assert fake.seen[-1].path == "/openai/deployments/my-deployment/chat/completions"


def test_bedrock_answers_through_the_translation(start_gateway, loop):
    from tests.upstreams.bedrock_fake import FakeBedrock
    with closed_after(partial(FakeBedrock, loop)) as make:
        fake = make()
        gw = start_gateway(base_config([fake.provider()], [
            chat_model("claude", {"provider": "bedrock", "model": "anthropic.claude-3-5-haiku-20241022-v1:0"},
                       retries=0)]))
        client = gw.client()
        whole = client.responses.create(model="claude", input="hi", max_output_tokens=64, instructions="Be brief.")
        assert whole.output_text and whole.usage.input_tokens_details.cached_tokens >= 0
        with client.responses.stream(model="claude", input="hi", max_output_tokens=64) as stream:
            streamed = stream.get_final_response()
        assert streamed.status == "completed" and streamed.output_text
        assert fake.seen[-1].path.endswith("/converse-stream")


def test_limits_apply_to_responses_in_openais_shape(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("mock-chat", {"provider": "mock"})])
    cfg["auth"]["keys"][0]["limits"] = {"rpm": 1}
    gw = start_gateway(cfg)
    assert gw.http().post("/v1/responses", json={"model": "mock-chat", "input": "one"}).status_code == 200
    refused = gw.http().post("/v1/responses", json={"model": "mock-chat", "input": "two"})
    assert refused.status_code == 429 and refused.headers["retry-after"]
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "try again in" in error["message"].lower()
