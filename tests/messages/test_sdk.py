"""/v1/messages through the official anthropic SDK over loopback: translated
to chat on mock-chat, the OpenAI and Gemini fakes; natively to the Anthropic
fake; errors in Anthropic's envelope; count_tokens and model discovery."""
from __future__ import annotations

from functools import partial

import anthropic
import orjson
import pytest

from tests.harness import base_config, chat_model, closed_after
from tests.upstreams.anthropic_fake import FakeAnthropic
from tests.upstreams.gemini_fake import FakeGemini

WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def client(gw, key: str = "sk-test", **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, **kw)


@pytest.fixture
def gw(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("mock-chat", {"provider": "mock"})])
    cfg["auth"]["keys"][0]["limits"] = {"rpm": 1000}
    return start_gateway(cfg)


def test_a_message_on_mock_chat(gw):
    raw = client(gw).messages.with_raw_response.create(model="mock-chat", max_tokens=64,
                                                       messages=[{"role": "user", "content": "hello"}])
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.content[0].type == "text" and m.content[0].text.startswith("mock")
    assert m.stop_reason == "end_turn" and m.usage.input_tokens > 0 and m.usage.output_tokens > 0
    assert raw.headers["x-gateway-provider"] == "mock"


def test_a_stream_on_mock_chat(gw):
    with client(gw).messages.stream(model="mock-chat", max_tokens=64, system="Be brief.",
                                    messages=[{"role": "user", "content": "stream please"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("mock") and final.content[0].text == text and final.stop_reason == "end_turn"


def test_a_tool_round_trip(gw):
    c = client(gw)
    first = c.messages.create(model="mock-chat", max_tokens=256, tools=[WEATHER],
                              messages=[{"role": "user", "content": "weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input, dict)
    second = c.messages.create(model="mock-chat", max_tokens=256, tools=[WEATHER], messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}])
    assert second.stop_reason == "end_turn" and second.content[0].text
    with c.messages.stream(model="mock-chat", max_tokens=256, tools=[WEATHER],
                           messages=[{"role": "user", "content": "weather in Paris?"}]) as stream:
        streamed = stream.get_final_message()
    streamed_use = next(b for b in streamed.content if b.type == "tool_use")
    assert streamed_use.input == use.input and streamed.stop_reason == "tool_use"


@pytest.mark.parametrize("body, says", [
    ({"messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_x", "content": "y"}]}]}, "tool_use"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}, "video"),
    ({"max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "web_search"),
    ({"max_tokens": 10, "messages": []}, "messages"),
    ({"max_tokens": "ten", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
])
def test_bad_input_is_a_400_in_anthropics_envelope(gw, body, says):
    r = gw.http().post("/v1/messages", json={"model": "mock-chat", **body})
    assert r.status_code == 400, r.text
    doc = r.json()
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    assert says in doc["error"]["message"]


def test_keys_by_x_api_key_or_bearer_and_refusals_in_anthropics_shape(gw):
    assert client(gw).messages.create(model="mock-chat", max_tokens=8,
                                      messages=[{"role": "user", "content": "x"}]).content
    bearer = anthropic.Anthropic(base_url=gw.url, auth_token="sk-test", max_retries=0)
    assert bearer.messages.create(model="mock-chat", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError) as err:
        client(gw, key="sk-wrong").messages.create(model="mock-chat", max_tokens=8,
                                                   messages=[{"role": "user", "content": "x"}])
    assert err.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(gw).messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["type"] == "error"
    odd = gw.http(key=None).post("/v1/messages", headers={"x-api-key": "sk-test", "x-app": "cli",
                                                           "x-stainless-lang": "js", "anthropic-beta": "x-2025"},
                                 json={"model": "mock-chat", "max_tokens": 8,
                                       "messages": [{"role": "user", "content": "x"}]})
    assert odd.status_code == 200            # unknown client headers are never refused


def test_rate_limits_answer_429_with_retry_after(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("mock-chat", {"provider": "mock"})])
    cfg["auth"]["keys"][0]["limits"] = {"rpm": 1}
    gw = start_gateway(cfg)
    client(gw).messages.create(model="mock-chat", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.RateLimitError) as err:
        client(gw).messages.create(model="mock-chat", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert err.value.response.headers["retry-after"] and err.value.body["error"]["type"] == "rate_limit_error"


def test_an_overloaded_upstream_is_a_529(start_gateway, fake_openai):
    fake = fake_openai("busy")
    fake.fail(503, '{"error": {"message": "overloaded", "type": "server_error"}}')
    gw = start_gateway(base_config([{"name": "busy", "type": "openai", "base_url": fake.url, "api_key": "k"}],
                                   [chat_model("gpt", {"provider": "busy", "model": "gpt-4.1"}, retries=0)]))
    r = gw.http().post("/v1/messages", json={"model": "gpt", "max_tokens": 8,
                                             "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 529, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "overloaded_error"
    chat = gw.http().post("/v1/chat/completions", json={"model": "gpt", "messages": [{"role": "user", "content": "x"}]})
    assert chat.status_code == 502            # OpenAI's dialect keeps its own status


def test_count_tokens_and_model_discovery(gw):
    c = client(gw)
    counted = c.messages.count_tokens(model="mock-chat", messages=[{"role": "user", "content": "hello " * 50}])
    assert counted.input_tokens > 50
    models = c.models.list()
    assert [m.id for m in models.data] == ["mock-chat"] and models.data[0].type == "model"
    bad = gw.http().post("/v1/messages/count_tokens", json={"model": "mock-chat", "messages": "x"})
    assert bad.status_code == 400 and bad.json()["type"] == "error"


def test_openai_upstream_through_the_translation(start_gateway, fake_openai):
    fake = fake_openai("oa")
    gw = start_gateway(base_config([{"name": "oa", "type": "openai", "base_url": fake.url, "api_key": "k"}],
                                   [chat_model("gpt", {"provider": "oa", "model": "gpt-4.1"})]))
    m = client(gw).messages.create(model="gpt", max_tokens=64, system=[{"type": "text", "text": "Be brief."}],
                                   messages=[{"role": "user", "content": "hi"}])
    assert fake.seen[-1].path == "/v1/chat/completions" and m.content[0].text
    sent = orjson.loads(fake.seen[-1].body)
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."} and sent["max_completion_tokens"] == 64
    with client(gw).messages.stream(model="gpt", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
        assert "".join(s.text_stream)


def test_gemini_upstream_through_the_translation(start_gateway, loop):
    with FakeGemini(loop) as fake:
        gw = start_gateway(base_config([{"name": "gem", "type": "gemini", "base_url": fake.url, "api_key": fake.key}],
                                       [chat_model("flash", {"provider": "gem", "model": "gemini-2.5-flash"})]))
        m = client(gw).messages.create(model="flash", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert m.content[0].text and m.stop_reason == "end_turn"
        with client(gw).messages.stream(model="flash", max_tokens=64,
                                        messages=[{"role": "user", "content": "hi"}]) as s:
            assert s.get_final_message().content[0].text == m.content[0].text


@pytest.fixture
def claude(start_gateway, loop):
    with closed_after(partial(FakeAnthropic, loop)) as make:
        fake = make()
        yield start_gateway(base_config(
            [{"name": "anthropic", "type": "anthropic", "base_url": fake.url, "api_key": fake.api_key}],
            [chat_model("claude", {"provider": "anthropic", "model": "claude-sonnet-4-5"}, retries=0)])), fake


def test_anthropic_upstream_natively(claude):
    gw, fake = claude
    raw = client(gw, default_headers={"anthropic-beta": "prompt-caching-2024-07-31"}).messages.with_raw_response \
        .create(model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}], extra_body={"top_k": 5})
    seen = fake.seen[-1]
    assert seen.path == "/v1/messages" and seen.headers["x-api-key"] == fake.api_key
    assert "prompt-caching-2024-07-31" in seen.headers["anthropic-beta"]
    assert orjson.loads(seen.body) == {"model": "claude-sonnet-4-5", "max_tokens": 100, "top_k": 5,
                                       "messages": [{"role": "user", "content": "hi"}]}
    from tests.upstreams.anthropic_fake import recorded
    assert raw.http_response.content == recorded("message.json")      # untouched
    with client(gw).messages.stream(model="claude", max_tokens=100, tools=[WEATHER],
                                    messages=[{"role": "user", "content": "weather?"}]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and any(b.type == "tool_use" for b in final.content)


def test_images_and_thinking_sent_back_reach_a_chat_upstream_as_chat(start_gateway, fake_openai):
    fake = fake_openai("oa")
    gw = start_gateway(base_config([{"name": "oa", "type": "openai", "base_url": fake.url, "api_key": "k"}],
                                   [chat_model("gpt", {"provider": "oa", "model": "gpt-4.1"})]))
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    client(gw).messages.create(model="gpt", max_tokens=64, thinking={"type": "enabled", "budget_tokens": 2048},
                               messages=[
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                   "data": pixel}},
                                     {"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "a pixel", "signature": "sig=="},
                                          {"type": "text", "text": "A pixel."}]},
        {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                                     {"type": "text", "text": "and this?"}]}])
    sent = orjson.loads(fake.seen[-1].body)
    first, answer, second = sent["messages"]
    assert first["content"][0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}}
    assert answer == {"role": "assistant", "content": "A pixel."}                 # thinking left out
    assert second["content"][0]["image_url"]["url"] == "https://x.test/a.png"
    assert sent["reasoning_effort"] == "low"


def test_count_tokens_asks_anthropic_where_it_can(claude):
    gw, fake = claude
    body = {"model": "claude", "system": "Be brief.", "messages": [{"role": "user", "content": "hi " * 40}]}
    r = gw.http().post("/v1/messages/count_tokens", json=body, headers={"anthropic-beta": "token-counting-2024-11-01"})
    assert r.status_code == 200 and r.headers["x-gateway-provider"] == "anthropic"
    seen = fake.seen[-1]
    assert seen.path == "/v1/messages/count_tokens" and "token-counting-2024-11-01" in seen.headers["anthropic-beta"]
    assert r.json() == {"input_tokens": len(seen.body) // 3}
    assert orjson.loads(seen.body)["model"] == "claude-sonnet-4-5"
    fake.fail(500, '{"type": "error", "error": {"type": "api_error", "message": "boom"}}')
    fallback = gw.http().post("/v1/messages/count_tokens", json=body)
    assert fallback.status_code == 200 and "x-gateway-provider" not in fallback.headers     # the estimate
    assert fallback.json()["input_tokens"] > 20


def test_bedrocks_claude_natively_through_invoke_model(start_gateway, loop):
    from tests.upstreams.anthropic_fake import recorded
    from tests.upstreams.bedrock_fake import FakeBedrock
    with closed_after(partial(FakeBedrock, loop)) as make:
        fake = make()
        gw = start_gateway(base_config([fake.provider()], [
            chat_model("claude", {"provider": "bedrock", "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}),
            chat_model("nova", {"provider": "bedrock", "model": "amazon.nova-pro-v1:0"})]))
        c = client(gw, default_headers={"anthropic-beta": "context-1m-2025-08-07"})
        raw = c.messages.with_raw_response.create(model="claude", max_tokens=100,
                                                  messages=[{"role": "user", "content": "hi"}])
        assert raw.http_response.content == recorded("message.json")
        seen = fake.seen[-1]
        assert seen.path.endswith("/invoke")
        assert orjson.loads(seen.body) == {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
                                           "anthropic_version": "bedrock-2023-05-31",
                                           "anthropic_beta": ["context-1m-2025-08-07"]}
        with c.messages.stream(model="claude", max_tokens=100, tools=[WEATHER],
                               messages=[{"role": "user", "content": "weather?"}]) as stream:
            final = stream.get_final_message()
        assert fake.seen[-1].path.endswith("/invoke-with-response-stream")
        assert final.stop_reason == "tool_use" and [b.type for b in final.content].count("tool_use") >= 1
        assert final.usage.output_tokens > 0
        other = c.messages.create(model="nova", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        assert fake.seen[-1].path.endswith("/converse") and other.content[0].text    # not Anthropic's: translated


def test_count_tokens_asks_gemini_where_it_can(start_gateway, loop):
    with FakeGemini(loop) as fake:
        gw = start_gateway(base_config([{"name": "gem", "type": "gemini", "base_url": fake.url, "api_key": fake.key}],
                                       [chat_model("flash", {"provider": "gem", "model": "gemini-2.5-flash"})]))
        r = gw.http().post("/v1/messages/count_tokens", json={
            "model": "flash", "system": "Be brief.", "tools": [WEATHER],
            "messages": [{"role": "user", "content": "hi " * 40}]})
        assert r.status_code == 200 and r.headers["x-gateway-provider"] == "gem"
        seen = fake.seen[-1]
        assert seen.method == "countTokens" and seen.model == "gemini-2.5-flash"
        sent = orjson.loads(seen.body)["generateContentRequest"]
        assert sent["model"] == "models/gemini-2.5-flash" and sent["systemInstruction"] and sent["tools"]
        assert "generationConfig" not in sent
        assert r.json() == {"input_tokens": len(orjson.dumps(sent["contents"])) // 4}
