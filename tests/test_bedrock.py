"""End to end: the official openai SDK -> the gateway -> a fake Bedrock on
loopback that checks every SigV4 signature and speaks Converse JSON and the
binary event stream."""
from __future__ import annotations

import json
from functools import partial

import openai
import pytest

from tests.harness import base_config, chat_model, closed_after
from tests.upstreams.bedrock_fake import SECRET_ACCESS_KEY, FakeBedrock

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MSG = [{"role": "user", "content": "hi"}]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}}]


@pytest.fixture
def fake_bedrock(loop):
    """fake_bedrock(**kw) -> a FakeBedrock on loopback, closed after the test."""
    with closed_after(partial(FakeBedrock, loop)) as make:
        yield make


@pytest.fixture
def claude(start_gateway, fake_bedrock):
    """Model `claude` on the fake Bedrock, falling back to the mock provider."""
    def make(*, session_token: str = "", retries: int = 2, model: str = HAIKU, **provider_kw):
        fake = fake_bedrock(session_token=session_token)
        gw = start_gateway(base_config(
            [fake.provider(**provider_kw), {"name": "mock", "type": "mock"}],
            [chat_model("claude", {"provider": "bedrock", "model": model}, {"provider": "mock"}, retries=retries),
             chat_model("claude-only", {"provider": "bedrock", "model": model}, retries=0)],
            breaker={"failures": 1000, "cooldown_s": 30}))
        return gw, fake
    return make


def test_plain_chat_is_signed_and_translated(claude):
    gw, fake = claude(session_token="FwoGZXIvYXdzEFAKESESSION")
    raw = gw.client().chat.completions.with_raw_response.create(
        model="claude", messages=[{"role": "system", "content": "Be brief."}, *MSG], max_tokens=64)
    reply = raw.parse()
    assert raw.headers["x-gateway-provider"] == "bedrock"
    assert reply.choices[0].message.content == "Hello! How can I help you today? é 🚀"
    assert reply.choices[0].finish_reason == "stop" and reply.model == HAIKU
    assert reply.usage.prompt_tokens == 1212 and reply.usage.prompt_tokens_details.cached_tokens == 1000
    seen = fake.seen[-1]
    assert seen.model == HAIKU and seen.path.endswith("/converse")
    assert seen.headers["x-amz-security-token"] == "FwoGZXIvYXdzEFAKESESSION"
    assert seen.json == {"system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                         "inferenceConfig": {"maxTokens": 64}}
    assert fake.rejected == []


def test_inference_profile_arn_reaches_the_model_path(claude):
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    gw, fake = claude(model=arn)
    gw.client().chat.completions.create(model="claude", messages=MSG)
    assert fake.seen[-1].model == arn and fake.rejected == []


def test_wrong_secret_is_refused_by_the_signature_check_and_fails_over(claude):
    gw, fake = claude(secret_access_key="not-the-secret")
    raw = gw.client().chat.completions.with_raw_response.create(model="claude", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "mock"
    assert fake.rejected == ["InvalidSignatureException"]
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="claude-only", messages=MSG)
    assert e.value.status_code == 502 and e.value.code == "upstream_auth_failed"
    text = e.value.response.text
    assert "signature" in text and "not-the-secret" not in text and "Canonical String" not in text


def test_stream_with_usage(claude):
    gw, fake = claude()
    stream = gw.client().chat.completions.create(model="claude", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there, friend é 🚀"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 18
    assert fake.seen[-1].path.endswith("/converse-stream") and fake.rejected == []


def test_tools_round_trip(claude):
    gw, fake = claude()
    c = gw.client()
    first = c.chat.completions.create(model="claude", messages=[{"role": "user", "content": "Paris and Zürich?"}],
                                      tools=TOOLS, tool_choice="auto")
    msg = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [json.loads(t.function.arguments)["city"] for t in msg.tool_calls] == ["Paris", "Zürich"]
    results = [{"role": "tool", "tool_call_id": t.id, "content": json.dumps({"temp_c": 20 + i})}
               for i, t in enumerate(msg.tool_calls)]
    second = c.chat.completions.create(model="claude", tools=TOOLS, messages=[
        {"role": "user", "content": "Paris and Zürich?"}, msg.model_dump(exclude_none=True), *results])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    sent = fake.seen[-1].json["messages"]
    assert [b["toolResult"]["toolUseId"] for b in sent[2]["content"]] == [t.id for t in msg.tool_calls]
    assert sent[2]["content"][1]["toolResult"]["content"] == [{"json": {"temp_c": 21}}]


def test_streamed_tool_use(claude):
    gw, _ = claude()
    calls: dict[int, dict] = {}
    finish = None
    for chunk in gw.client().chat.completions.create(model="claude", messages=MSG, tools=TOOLS, stream=True):
        for d in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(d.index, {"id": d.id, "name": d.function.name, "arguments": ""})
            call["arguments"] += d.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(v["id"], v["name"], json.loads(v["arguments"])) for _, v in sorted(calls.items())] == [
        ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", {"city": "Paris"}),
        ("tooluse_3mBqJ0aSRU2y7yBTeXwXcg", "get_weather", {"city": "Zürich"})]


def test_data_url_images_are_sent_as_bytes_and_links_refused(claude):
    gw, fake = claude()
    c = gw.client()
    c.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}])
    assert fake.seen[-1].json["messages"][0]["content"][1] == {"image": {"format": "png", "source": {"bytes": PNG}}}
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="claude", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert e.value.code == "unsupported_image_url"
    assert len(fake.seen) == 1


def test_n_above_one_is_refused_before_sending(claude):
    gw, fake = claude()
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(model="claude", messages=MSG, n=2)
    assert e.value.param == "n" and fake.seen == []


@pytest.mark.parametrize("error,status,code", [
    ("ValidationException_context", 400, "context_length_exceeded"),
    ("ValidationException", 400, None),
    ("ResourceNotFoundException", 404, "model_not_found"),
    ("ThrottlingException", 429, "rate_limit_exceeded"),
    ("ServiceQuotaExceededException", 429, "rate_limit_exceeded"),
    ("ModelTimeoutException", 504, "upstream_timeout"),
    ("ModelErrorException", 502, "upstream_error"),
    ("ServiceUnavailableException", 502, "upstream_error"),
    ("AccessDeniedException", 502, "upstream_auth_failed"),
])
def test_errors_reach_the_client_in_openai_shape(claude, error, status, code):
    gw, fake = claude()
    fake.fail(error, headers={"retry-after": "4"} if error == "ThrottlingException" else {})
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="claude-only", messages=MSG)
    assert e.value.status_code == status and e.value.code == code
    if error == "ThrottlingException":
        assert e.value.response.headers["retry-after"] == "4"
    if status == 400:
        assert len(fake.seen) == 1            # the request's own fault: not retried


def test_throttling_fails_over_to_the_mock(claude):
    gw, fake = claude()
    fake.fail("ThrottlingException")
    raw = gw.client().chat.completions.with_raw_response.create(model="claude", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().choices[0].message.content


def test_throttling_frame_before_any_content_fails_over(claude):
    gw, fake = claude()
    fake.ok(exception_after=0, exception=("throttlingException", "Too many requests, please wait."))
    with gw.client().chat.completions.with_streaming_response.create(model="claude", messages=MSG, stream=True) as r:
        assert r.headers["x-gateway-provider"] == "mock"
        assert "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)


def test_exception_frame_mid_stream_ends_with_an_error_event(claude):
    gw, fake = claude()
    fake.ok(exception_after=3, chunk_delay_s=0.05)
    got = []
    with pytest.raises(openai.APIError) as e:
        for chunk in gw.client().chat.completions.create(model="claude", messages=MSG, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "Hello", " there,"]
    assert "ModelStreamErrorException" in e.value.message


def test_corrupt_frame_mid_stream_is_an_upstream_fault(claude):
    gw, fake = claude()
    fake.ok(corrupt_after=2, chunk_delay_s=0.05)
    with pytest.raises(openai.APIError) as e:
        for _ in gw.client().chat.completions.create(model="claude", messages=MSG, stream=True):
            pass
    assert "corrupt event-stream frame" in e.value.message


def test_no_secret_anywhere_disables_the_provider(start_gateway, fake_bedrock, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    fake = fake_bedrock()
    entry = {k: v for k, v in fake.provider().items() if k not in ("access_key_id", "secret_access_key")}
    gw = start_gateway(base_config([entry], [chat_model("claude", {"provider": "bedrock", "model": HAIKU})]))
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model="claude", messages=MSG)
    assert "bedrock" not in gw.runtime.providers


def test_credentials_from_the_environment(start_gateway, fake_bedrock, monkeypatch):
    from tests.upstreams.bedrock_fake import ACCESS_KEY_ID
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-session")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    fake = fake_bedrock(session_token="env-session")
    entry = {"name": "bedrock", "type": "bedrock", "base_url": fake.url}
    gw = start_gateway(base_config([entry], [chat_model("claude", {"provider": "bedrock", "model": HAIKU})]))
    assert gw.client().chat.completions.create(model="claude", messages=MSG).choices[0].message.content
    assert fake.rejected == []


def test_config_check_names_the_wrong_field_and_notes_why_disabled(monkeypatch):
    from gateway import config as config_loader
    from gateway.config.checks import ConfigError
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    models = "models: [{name: c, route: {targets: [{provider: br, model: m}]}}]\n"
    with pytest.raises(ConfigError) as e:
        config_loader.parse("providers: [{name: br, type: bedrock, region: us-east-1, api_key: sk-1}]\n" + models)
    assert any(err.startswith("providers[0].api_key:") and "access_key_id" in err for err in e.value.errors)
    checked = config_loader.parse("providers: [{name: br, type: bedrock, access_key_id: AK, secret_access_key: s}]\n"
                                  + models)
    assert checked.disabled == {"br": "region is empty and AWS_REGION is not set"}
