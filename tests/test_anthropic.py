"""The official openai SDK -> gateway -> a fake Anthropic on loopback: plain
and streamed answers, tools, images, errors in OpenAI's shape, and failover
from Anthropic's own 429 / 529 overloaded to another provider."""
from __future__ import annotations

import base64
from functools import partial

import openai
import pytest

from tests.harness import base_config, chat_model, closed_after
from tests.upstreams.anthropic_fake import FakeAnthropic, recorded

MSG = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


@pytest.fixture
def fake_anthropic(loop):
    """fake_anthropic(**kw) -> a FakeAnthropic on loopback, closed after the test."""
    with closed_after(partial(FakeAnthropic, loop)) as make:
        yield make


def anthropic(fake: FakeAnthropic, name: str = "claude", **extra) -> dict:
    return {"name": name, "type": "anthropic", "base_url": fake.url, "api_key": fake.api_key, **extra}


@pytest.fixture
def setup(start_gateway, fake_anthropic):
    """Model `claude` served by the fake alone, with no retries."""
    def make(**provider_kw):
        fake = fake_anthropic()
        gw = start_gateway(base_config([anthropic(fake, **provider_kw)],
                                       [chat_model("claude", {"provider": "claude", "model": "claude-sonnet-4-5"},
                                                   retries=0)]))
        return gw, fake
    return make


def test_plain_answer(setup):
    gw, fake = setup()
    raw = gw.client().chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    done = raw.parse()
    assert done.choices[0].message.content == "Hello there, friend é 🚀"
    assert done.choices[0].finish_reason == "stop"
    assert done.id == "msg_01T4jd6NyD9xGGtTPDC4ogy5" and done.model == "claude-sonnet-4-5-20250929"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (1706, 50)
    assert done.usage.prompt_tokens_details.cached_tokens == 1200
    assert raw.headers["x-gateway-provider"] == "claude"
    sent = fake.seen[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-ant-test" and sent.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent.headers
    assert sent.json == {"model": "claude-sonnet-4-5", "max_tokens": 4096,
                         "system": [{"type": "text", "text": "Be brief."}],
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}


def test_config_options_reach_the_wire(setup):
    gw, fake = setup(version="2024-01-01", beta=["prompt-caching-2024-07-31"], default_max_tokens=256)
    gw.client().chat.completions.create(model="claude", messages=MSG)
    sent = fake.seen[-1]
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent.json["max_tokens"] == 256


def test_stream_with_include_usage(setup):
    gw, fake = setup()
    chunks = list(gw.client().chat.completions.create(model="claude", messages=MSG, stream=True,
                                                      stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there, friend é 🚀"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 31
    assert chunks[-1].usage.completion_tokens == 6
    assert fake.seen[-1].json["stream"] is True


def test_stream_without_include_usage_has_no_usage_chunk(setup):
    gw, _ = setup()
    chunks = list(gw.client().chat.completions.create(model="claude", messages=MSG, stream=True))
    assert all(c.choices for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"


def test_tools_round_trip(setup):
    gw, fake = setup()
    client = gw.client()
    ask = [{"role": "user", "content": "Weather in San Francisco and London?"}]
    first = client.chat.completions.create(model="claude", messages=ask, tools=[WEATHER], parallel_tool_calls=False)
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls" and len(calls) == 2
    assert fake.seen[-1].json["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    follow = ask + [first.choices[0].message.model_dump(exclude_none=True)] + [
        {"role": "tool", "tool_call_id": c.id, "content": f"sunny in {c.function.arguments}"} for c in calls]
    second = client.chat.completions.create(model="claude", messages=follow, tools=[WEATHER])
    assert second.choices[0].message.content == "Hello there, friend é 🚀"
    turns = fake.seen[-1].json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert [b["type"] for b in turns[1]["content"]] == ["text", "tool_use", "tool_use"]
    assert [b["tool_use_id"] for b in turns[2]["content"]] == [c.id for c in calls]


def test_streamed_tool_calls(setup):
    gw, _ = setup()
    stream = gw.client().chat.completions.create(model="claude", messages=MSG, tools=[WEATHER], stream=True)
    args: dict[int, str] = {}
    for chunk in stream:
        for d in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            args[d.index] = args.get(d.index, "") + (d.function.arguments or "")
    assert args == {0: '{"location": "Paris"}', 1: '{"location": "Tokyo"}'}


def test_images_by_data_url_and_https_url(setup):
    gw, fake = setup()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    gw.client().chat.completions.create(model="claude", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
    blocks = fake.seen[-1].json["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


@pytest.mark.parametrize("status,file,headers,error,client_status,code", [
    (400, "error_400_context.json", {}, openai.BadRequestError, 400, "context_length_exceeded"),
    (404, "error_404.json", {}, openai.NotFoundError, 404, "model_not_found"),
    (413, "error_413.json", {}, openai.APIStatusError, 413, "request_too_large"),
    (429, "error_429.json", {"retry-after": "7"}, openai.RateLimitError, 429, "rate_limit_exceeded"),
    (500, "error_500.json", {}, openai.InternalServerError, 502, "upstream_error"),
    (529, "error_529.json", {}, openai.InternalServerError, 502, "upstream_error"),
])
def test_errors_in_openai_shape(setup, status, file, headers, error, client_status, code):
    gw, fake = setup()
    fake.fail(status, recorded(file), headers=headers)
    with pytest.raises(error) as e:
        gw.client().chat.completions.create(model="claude", messages=MSG)
    assert e.value.status_code == client_status and e.value.code == code
    assert e.value.response.headers.get("retry-after") == headers.get("retry-after")
    assert e.value.response.json()["error"]["message"]


def test_wrong_key_is_an_upstream_auth_failure_and_never_leaks(start_gateway, fake_anthropic):
    fake = fake_anthropic()
    gw = start_gateway(base_config([{**anthropic(fake), "api_key": "sk-ant-wrong"}],
                                   [chat_model("claude", {"provider": "claude"}, retries=0)]))
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="claude", messages=MSG)
    assert e.value.status_code == 502 and e.value.code == "upstream_auth_failed"
    assert "sk-ant-wrong" not in e.value.response.text


def test_what_anthropic_cannot_do_is_refused_before_sending(setup):
    gw, fake = setup()
    for params, param in (({"n": 2}, "n"), ({"logprobs": True}, "logprobs")):
        with pytest.raises(openai.BadRequestError) as e:
            gw.client().chat.completions.create(model="claude", messages=MSG, **params)
        assert e.value.param == param
    assert fake.seen == []


def test_stream_cut_after_content_ends_with_an_error_event(setup):
    gw, fake = setup()
    fake.ok(stream_cut_after=4)          # message_start, block start, ping, "Hello", then the line drops
    got = []
    with pytest.raises(openai.APIError):
        for chunk in gw.client().chat.completions.create(model="claude", messages=MSG, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "Hello"]


@pytest.fixture
def with_fallback(start_gateway, fake_anthropic):
    """`fast-chat`: the fake Anthropic first, the in-process mock second."""
    fake = fake_anthropic()
    gw = start_gateway(base_config(
        [anthropic(fake), {"name": "mock", "type": "mock"}],
        [chat_model("fast-chat", {"provider": "claude", "model": "claude-haiku-4-5"}, {"provider": "mock"})],
        breaker={"failures": 1000, "cooldown_s": 30}))
    return gw, fake


@pytest.mark.parametrize("status,file", [(529, "error_529.json"), (429, "error_429.json"), (500, "error_500.json")])
def test_overloaded_or_rate_limited_fails_over(with_fallback, status, file):
    gw, fake = with_fallback
    fake.fail(status, recorded(file), headers={"retry-after": "3"})
    raw = gw.client().chat.completions.with_raw_response.create(model="fast-chat", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().choices[0].message.content
    assert len(fake.seen) == 1


def test_overloaded_inside_the_stream_fails_over_before_the_first_byte(with_fallback):
    gw, fake = with_fallback
    fake.ok(stream_body=recorded("stream_overloaded.sse"))
    with gw.client().chat.completions.with_streaming_response.create(
            model="fast-chat", messages=MSG, stream=True) as r:
        assert r.headers["x-gateway-provider"] == "mock" and r.headers["x-gateway-attempts"] == "2"
        assert "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
