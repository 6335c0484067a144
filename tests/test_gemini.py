"""The openai SDK → gateway → a fake Gemini API (Generative Language, v1beta)."""
from __future__ import annotations

import base64

import openai
import pytest

from tests.harness import base_config, chat_model
from tests.upstreams.gemini_fake import FakeGemini, recorded

MSG = [{"role": "user", "content": "Bonjour?"}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"location": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                   "required": ["location"]}}}


@pytest.fixture
def gemini(loop):
    with FakeGemini(loop) as fake:
        yield fake


def provider(fake, **kw):
    return {"name": "gem", "type": "gemini", "base_url": fake.url, "api_key": fake.key, **kw}


@pytest.fixture
def gw(start_gateway, gemini):
    return start_gateway(base_config([provider(gemini)], [
        chat_model("flash", {"provider": "gem", "model": "gemini-2.5-flash"}, retries=0),
        {"name": "embed", "kind": "embedding", "route": {"targets": [{"provider": "gem",
                                                                      "model": "gemini-embedding-001"}]}}]))


def test_chat(gw, gemini):
    raw = gw.client().chat.completions.with_raw_response.create(
        model="flash", messages=[{"role": "system", "content": "Be kind."}, *MSG], temperature=0.3, max_tokens=50)
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hello there, friend é 🚀"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.id == "qpc2afWVFJK4vr0Pq6WiyAU" and reply.model == "gemini-2.5-flash"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 37)
    assert reply.usage.completion_tokens_details.reasoning_tokens == 30
    assert raw.headers["x-gateway-provider"] == "gem"
    seen = gemini.seen[-1]
    assert (seen.model, seen.method, seen.query) == ("gemini-2.5-flash", "generateContent", "")
    assert seen.headers["x-goog-api-key"] == gemini.key
    assert seen.json == {"contents": [{"role": "user", "parts": [{"text": "Bonjour?"}]}],
                         "systemInstruction": {"parts": [{"text": "Be kind."}]},
                         "generationConfig": {"temperature": 0.3, "maxOutputTokens": 50}}


def test_stream_with_usage(gw, gemini):
    chunks = list(gw.client().chat.completions.create(model="flash", messages=MSG, stream=True,
                                                       stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there, friend é 🚀"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 49
    assert gemini.seen[-1].method == "streamGenerateContent" and gemini.seen[-1].query == "alt=sse"


def test_tools_round_trip(gw, gemini):
    client = gw.client()
    gemini.chat_body = recorded("generate_tool_calls.json")
    messages: list = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    first = client.chat.completions.create(model="flash", messages=messages, tools=[WEATHER], tool_choice="auto")
    msg = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in msg.tool_calls] == ["get_weather", "get_weather"]
    sent = gemini.seen[-1].json
    assert sent["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "OBJECT", "required": ["location"],
        "properties": {"location": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]}}}
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    messages.append(msg)             # the SDK's own message object, as applications append it
    for c, answer in zip(msg.tool_calls, ['{"temp": 21}', "rainy"], strict=True):
        messages.append({"role": "tool", "tool_call_id": c.id, "content": answer})
    gemini.chat_body = recorded("generate_text.json")
    second = client.chat.completions.create(model="flash", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Hello there, friend é 🚀"
    contents = gemini.seen[-1].json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    calls = contents[1]["parts"]
    assert calls[0]["functionCall"] == {"name": "get_weather", "args": {"location": "Paris", "unit": "celsius"}}
    assert calls[0]["thoughtSignature"].startswith("CikB")   # handed back as Gemini 3 requires
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "get_weather", "response": {"content": "rainy"}}}]


def test_streamed_tool_calls(gw, gemini):
    gemini.stream_body = recorded("stream_tool_calls.sse")
    chunks = list(gw.client().chat.completions.create(model="flash", messages=MSG, tools=[WEATHER], stream=True))
    calls = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
    assert [(t.index, t.function.name) for t in calls] == [(0, "get_weather"), (1, "get_weather")]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_images(gw, gemini):
    gw.client().chat.completions.create(model="flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What differs?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}]}])
    assert gemini.seen[-1].json["contents"][0]["parts"] == [
        {"text": "What differs?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/b.png"}}]


def test_n_becomes_candidates(gw, gemini):
    gemini.chat_body = recorded("generate_two_candidates.json")
    reply = gw.client().chat.completions.create(model="flash", messages=MSG, n=2)
    assert [c.finish_reason for c in reply.choices] == ["stop", "length"]
    assert gemini.seen[-1].json["generationConfig"] == {"candidateCount": 2}


def test_refused_before_sending(gw, gemini):
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(model="flash", messages=MSG, logit_bias={"1": 5})
    assert e.value.param == "logit_bias"
    assert gemini.seen == []


@pytest.mark.parametrize("status,file,error,code", [
    (429, "error_429_quota.json", openai.RateLimitError, "rate_limit_exceeded"),
    (400, "error_400_context.json", openai.BadRequestError, "context_length_exceeded"),
    (404, "error_404_model.json", openai.NotFoundError, "model_not_found"),
    (503, "error_503_overloaded.json", openai.APIStatusError, "upstream_error"),
    (403, "error_403_permission.json", openai.APIStatusError, "upstream_auth_failed"),
])
def test_errors_reach_the_client_in_openai_shape(gw, gemini, status, file, error, code):
    gemini.fail(status, recorded(file))
    with pytest.raises(error) as e:
        gw.client().chat.completions.create(model="flash", messages=MSG)
    assert e.value.code == code
    if status == 429:
        assert e.value.response.headers["retry-after"] == "29"   # from google.rpc.RetryInfo
    if status == 503:
        assert e.value.status_code == 502 and "overloaded" in e.value.message


def test_wrong_key_is_an_auth_failure_and_never_leaks(start_gateway, gemini):
    gw = start_gateway(base_config([provider(gemini, api_key="gm-wrong-key")],
                                   [chat_model("flash", {"provider": "gem"}, retries=0)]))
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="flash", messages=MSG)
    assert e.value.status_code == 502 and e.value.code == "upstream_auth_failed"
    assert "API key not valid" in e.value.message
    assert "gm-wrong-key" not in e.value.response.text
    assert "gm-wrong-key" not in gemini.seen[-1].query


def test_blocked_prompt_is_a_400(gw, gemini):
    gemini.chat_body = recorded("generate_blocked.json")
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(model="flash", messages=MSG)
    assert e.value.code == "content_filter" and "PROHIBITED_CONTENT" in e.value.message
    gemini.stream_body = recorded("stream_blocked.sse")
    with pytest.raises(openai.BadRequestError):
        list(gw.client().chat.completions.create(model="flash", messages=MSG, stream=True))


@pytest.mark.parametrize("stream", [False, True])
def test_resource_exhausted_fails_over_to_mock(start_gateway, gemini, stream):
    gw = start_gateway(base_config([provider(gemini), {"name": "mock", "type": "mock"}],
                                   [chat_model("m", {"provider": "gem", "model": "gemini-2.5-flash"},
                                               {"provider": "mock"})]))
    gemini.fail(429, recorded("error_429_quota.json"))
    client = gw.client()
    if stream:
        with client.chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:
            assert r.headers["x-gateway-provider"] == "mock"
            assert "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=MSG)
        assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
    assert len(gemini.seen) == 1


def test_overloaded_stream_fails_over_before_the_first_byte(start_gateway, gemini):
    gw = start_gateway(base_config([provider(gemini), {"name": "mock", "type": "mock"}],
                                   [chat_model("m", {"provider": "gem"}, {"provider": "mock"})]))
    gemini.fail(503, recorded("error_503_overloaded.json"))
    with gw.client().chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:
        assert r.headers["x-gateway-provider"] == "mock"


def test_error_inside_the_stream_ends_it_with_an_error_event(gw, gemini):
    gemini.stream_body = recorded("stream_error.sse")
    gemini.ok(chunk_delay_s=0.2)     # the first event reaches the client before the error does
    got = []
    with pytest.raises(openai.APIError) as e:
        for chunk in gw.client().chat.completions.create(model="flash", messages=MSG, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "Once upon"]
    assert "overloaded" in e.value.message


def test_embeddings_default_base64_and_float(gw, gemini):
    client = gw.client()
    one = client.embeddings.create(model="embed", input="hello")          # the SDK asks for base64
    assert gemini.seen[-1].method == "embedContent"
    assert gemini.seen[-1].json["model"] == "models/gemini-embedding-001"
    assert one.data[0].embedding[:2] == pytest.approx([0.013168523, -0.008711934])
    assert len(one.data[0].embedding) == 8

    many = client.embeddings.create(model="embed", input=["a", "b"], encoding_format="float", dimensions=4)
    assert gemini.seen[-1].method == "batchEmbedContents"
    assert [r["outputDimensionality"] for r in gemini.seen[-1].json["requests"]] == [4, 4]
    assert [d.index for d in many.data] == [0, 1]
    assert many.data[1].embedding == pytest.approx([0.023168523, 0.001288066, -0.036782676, 0.01069968984])
    assert many.usage.prompt_tokens == 0


def test_token_array_embeddings_are_refused(gw, gemini):
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().embeddings.create(model="embed", input=[[1, 2, 3]])
    assert e.value.param == "input" and gemini.seen == []
