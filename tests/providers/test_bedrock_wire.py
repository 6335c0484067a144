"""Bedrock adapter translation, as pure functions on recorded payloads:
OpenAI requests to Converse, Converse answers and ConverseStream events back
to OpenAI's shapes, and Bedrock's errors to the gateway's failure kinds."""
from __future__ import annotations

import json

import orjson
import pytest

from providers import errors
from providers.base import Call
from providers.bedrock import BedrockProvider, _event, api, eventstream
from providers.bedrock.chat import converse_request
from providers.bedrock.errors import parse_error, stream_exception
from providers.bedrock.reply import completion
from providers.bedrock.stream import ConverseStream
from tests.upstreams.bedrock_fake import event_frame, exception_frame, frame, recorded, recorded_events

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object",
                                                           "properties": {"city": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "get_time"}}]


def converse(**data) -> dict:
    data.setdefault("model", "m")
    data.setdefault("messages", [{"role": "user", "content": "hi"}])
    return orjson.loads(converse_request(data, "bedrock"))


def refused(**data) -> errors.BadRequest:
    with pytest.raises(errors.BadRequest) as e:
        converse(**data)
    assert e.value.status == 400
    return e.value


# -- requests -------------------------------------------------------------------

def test_plain_request_with_system_and_parameters():
    body = converse(messages=[{"role": "system", "content": "Be brief."},
                              {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                              {"role": "user", "content": "Bonjour é 🚀"}],
                    max_tokens=50, max_completion_tokens=100, temperature=0.2, top_p=0.9, stop="END",
                    seed=7, presence_penalty=0.5, frequency_penalty=0.1, logit_bias={"1": 2}, user="u1",
                    parallel_tool_calls=False, metadata={"a": "b"}, store=True, service_tier="auto")
    assert body == {"system": [{"text": "Be brief."}, {"text": "Answer in French."}],
                    "messages": [{"role": "user", "content": [{"text": "Bonjour é 🚀"}]}],
                    "inferenceConfig": {"maxTokens": 100, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]}}


def test_same_role_neighbours_merge_and_empty_turns_drop():
    body = converse(messages=[{"role": "user", "content": "one"},
                              {"role": "user", "content": [{"type": "text", "text": "two"}]},
                              {"role": "assistant", "content": ""}, {"role": "user", "content": ""},
                              {"role": "user", "content": "three"}])
    assert body["messages"] == [{"role": "user", "content": [{"text": "one"}, {"text": "two"}, {"text": "three"}]}]
    assert "inferenceConfig" not in body and "toolConfig" not in body


def test_nothing_but_empty_messages_is_refused():
    assert refused(messages=[{"role": "system", "content": "x"}, {"role": "user", "content": ""}]).param == "messages"


@pytest.mark.parametrize("media,fmt", [("image/png", "png"), ("image/jpeg", "jpeg"), ("image/gif", "gif"),
                                       ("image/webp", "webp")])
def test_data_url_images_become_image_blocks(media, fmt):
    body = converse(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:{media};base64,{PNG}", "detail": "high"}}]}])
    assert body["messages"][0]["content"] == [
        {"text": "What is this?"}, {"image": {"format": fmt, "source": {"bytes": PNG}}}]


def test_image_links_are_refused_clearly():
    e = refused(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert e.code == "unsupported_image_url" and "data URL" in e.message


@pytest.mark.parametrize("part,words", [
    ({"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{PNG}"}}, "image/bmp"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "invalid base64"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "input_audio"),
    ({"type": "file", "file": {"file_id": "f"}}, "'file'"),
])
def test_unsupported_parts_are_refused(part, words):
    assert words in refused(messages=[{"role": "user", "content": [part]}]).message


def test_tool_calls_and_results_round_trip():
    body = converse(tools=TOOLS, messages=[
        {"role": "user", "content": "Weather in Paris and Zürich?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "sunny, 18 °C"}]},
        {"role": "user", "content": "Thanks!"}])
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris and Zürich?"}]},
        {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Zürich"}}}]},
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"json": {"temp_c": 21}}]}},
            {"toolResult": {"toolUseId": "call_2", "content": [{"text": "sunny, 18 °C"}]}},
            {"text": "Thanks!"}]}]
    assert body["toolConfig"] == {"tools": [
        {"toolSpec": {"name": "get_weather", "description": "Weather in a city",
                      "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
        {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]}


def test_assistant_text_with_a_tool_call_and_odd_results():
    body = converse(tools=TOOLS, messages=[
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "[1, 2]"},
        {"role": "tool", "tool_call_id": "call_9", "content": ""}])
    assert body["messages"][1]["content"] == [{"text": "Let me check."},
                                              {"toolUse": {"toolUseId": "call_9", "name": "get_time", "input": {}}}]
    assert body["messages"][2]["content"] == [{"toolResult": {"toolUseId": "call_9", "content": [{"text": "[1, 2]"}]}},
                                              {"toolResult": {"toolUseId": "call_9", "content": []}}]


@pytest.mark.parametrize("choice,expected", [
    (None, None), ("auto", None), ("required", {"any": {}}),
    ({"type": "function", "function": {"name": "get_time"}}, {"tool": {"name": "get_time"}})])
def test_tool_choice(choice, expected):
    config = converse(tools=TOOLS, tool_choice=choice)["toolConfig"]
    assert config.get("toolChoice") == expected
    assert len(config["tools"]) == 2


def test_tool_choice_none_withholds_the_tools_unless_the_history_uses_them():
    assert "toolConfig" not in converse(tools=TOOLS, tool_choice="none")
    history = [{"role": "user", "content": "t?"},
               {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                                     "function": {"name": "get_time", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "c", "content": "noon"}]
    config = converse(tools=TOOLS, tool_choice="none", messages=history)["toolConfig"]
    assert "toolChoice" not in config and len(config["tools"]) == 2


@pytest.mark.parametrize("data,param", [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "logprobs"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"temperature": 1.5}, "temperature"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]}, "messages[1].tool_calls"),
])
def test_what_cannot_be_served_is_a_clear_400(data, param):
    assert refused(**data).param == param


def test_json_schema_becomes_output_config():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    body = converse(response_format={"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}})
    fmt = body["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema"
    assert fmt["structure"]["jsonSchema"]["name"] == "reply"
    assert json.loads(fmt["structure"]["jsonSchema"]["schema"]) == schema
    assert "outputConfig" not in converse(response_format={"type": "text"})


def test_provider_request_is_signed_and_sent_to_the_model_path(monkeypatch):
    options = api.Options(name="bedrock", type="bedrock", region="us-east-1", access_key_id="AKID",
                          secret_access_key="secret", session_token="tok", headers={"x-team": "a"})
    p = BedrockProvider(options)
    data = {"model": "claude", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    req = p.request(Call("chat", orjson.dumps(data), data, "anthropic.claude-3-5-haiku-20241022-v1:0", stream=True))
    assert req.url == ("https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                       "anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream")
    assert req.headers["host"] == "bedrock-runtime.us-east-1.amazonaws.com"
    assert req.headers["content-type"] == "application/json" and req.headers["x-team"] == "a"
    assert req.headers["x-amz-security-token"] == "tok"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token" in req.headers["authorization"]
    assert orjson.loads(req.body) == {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}


def test_disabled_without_a_secret(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    bare = api.Options(name="b", type="bedrock", region="us-east-1")
    assert "secret_access_key is empty" in BedrockProvider.disabled_reason(bare)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert BedrockProvider.disabled_reason(bare) is None
    assert BedrockProvider.disabled_reason(api.Options(name="b", type="bedrock", enabled=False)) == "enabled: false"


# -- answers --------------------------------------------------------------------

def answer(name: str) -> tuple[dict, object]:
    body, usage = completion(recorded(name), "anthropic.claude-3-5-haiku-20241022-v1:0", "bedrock")
    return orjson.loads(body), usage


def test_text_answer_with_cache_usage():
    doc, usage = answer("converse_text.json")
    assert doc["id"].startswith("chatcmpl-bedrock-") and doc["object"] == "chat.completion"
    assert doc["model"] == "anthropic.claude-3-5-haiku-20241022-v1:0"
    choice = doc["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello! How can I help you today? é 🚀",
                                 "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert doc["usage"]["prompt_tokens"] == 12 + 1000 + 200 and doc["usage"]["completion_tokens"] == 15
    assert doc["usage"]["total_tokens"] == 1227
    assert doc["usage"]["prompt_tokens_details"]["cached_tokens"] == 1000
    assert (usage.cached_tokens, usage.cache_write_tokens) == (1000, 200)


def test_parallel_tool_use_answer():
    doc, usage = answer("converse_tool_use.json")
    msg = doc["choices"][0]["message"]
    assert doc["choices"][0]["finish_reason"] == "tool_calls"
    assert msg["content"] == "I'll look up the weather in both cities."
    assert [(c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in msg["tool_calls"]] == [
        ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "function", "get_weather", {"city": "Paris", "unit": "celsius"}),
        ("tooluse_3mBqJ0aSRU2y7yBTeXwXcg", "function", "get_weather", {"city": "Zürich", "unit": "celsius"})]
    assert (usage.prompt_tokens, usage.completion_tokens) == (420, 96)


@pytest.mark.parametrize("name,finish", [("converse_guardrail.json", "content_filter"),
                                         ("converse_max_tokens.json", "length")])
def test_finish_reasons(name, finish):
    assert answer(name)[0]["choices"][0]["finish_reason"] == finish


def test_tool_only_answer_has_null_content():
    body = {"output": {"message": {"role": "assistant", "content": [
        {"toolUse": {"toolUseId": "t1", "name": "get_time", "input": {}}}]}}, "stopReason": "tool_use",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}
    doc = orjson.loads(completion(orjson.dumps(body), "m", "bedrock")[0])
    assert doc["choices"][0]["message"]["content"] is None
    assert doc["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"


@pytest.mark.parametrize("body", [b"not json", b"{}", b'{"output": {"message": {"content": "x"}}}'])
def test_malformed_answers_are_upstream_faults(body):
    with pytest.raises(errors.UpstreamFault):
        completion(body, "m", "bedrock")


# -- streams --------------------------------------------------------------------

def run_stream(events, include_usage=True) -> tuple[list[dict], ConverseStream]:
    t = ConverseStream("anthropic.claude-3-5-haiku-20241022-v1:0", include_usage, "bedrock")
    chunks = [c for e, p in events for c in t.feed(e, orjson.dumps(p))]
    return chunks + t.end(), t


def test_text_stream_with_usage_chunk():
    chunks, t = run_stream(recorded_events("stream_text.json"))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == \
        "Hello there, friend é 🚀"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 18
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["object"] == "chat.completion.chunk"
    assert (t.usage.prompt_tokens, t.usage.completion_tokens) == (11, 7)


def test_no_usage_chunk_unless_asked():
    chunks, t = run_stream(recorded_events("stream_text.json"), include_usage=False)
    assert all(c["choices"] for c in chunks) and t.usage.completion_tokens == 7


def test_tool_use_stream():
    chunks, t = run_stream(recorded_events("stream_tool_use.json"))
    calls: dict[int, dict] = {}
    for c in chunks:
        for d in (c["choices"][0]["delta"].get("tool_calls") or []) if c["choices"] else []:
            call = calls.setdefault(d["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = d.get("id") or call["id"]
            call["name"] = d.get("function", {}).get("name") or call["name"]
            call["arguments"] += d.get("function", {}).get("arguments", "")
    assert [(v["id"], v["name"], json.loads(v["arguments"])) for _, v in sorted(calls.items())] == [
        ("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", {"city": "Paris"}),
        ("tooluse_3mBqJ0aSRU2y7yBTeXwXcg", "get_weather", {"city": "Zürich"})]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["tool_calls"]
    assert t.usage.cached_tokens == 100 and t.usage.prompt_tokens == 502


def test_stream_without_message_stop_still_finishes():
    chunks, _ = run_stream([("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "hi"}}),
                            ("someFutureEvent", {"x": 1})], include_usage=False)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop"]


@pytest.mark.parametrize("event,kind", [
    ("throttlingException", errors.RateLimited),
    ("modelStreamErrorException", errors.UpstreamFault),
    ("internalServerException", errors.UpstreamFault),
    ("serviceUnavailableException", errors.UpstreamFault),
    ("validationException", errors.BadRequest),
    ("somethingNewException", errors.UpstreamFault),
])
def test_exception_events_raise_the_matching_failure(event, kind):
    t = ConverseStream("m", False, "bedrock")
    t.feed("messageStart", b'{"role": "assistant"}')
    with pytest.raises(kind) as e:
        t.feed(event, b'{"message": "it broke"}')
    assert type(e.value) is kind and "it broke" in e.value.message


def test_context_length_mid_stream():
    err = stream_exception("validationException", b'{"message": "Input is too long for requested model."}',
                           provider="bedrock")
    assert (err.status, err.code, err.param) == (400, "context_length_exceeded", "messages")


def test_unreadable_event_is_an_upstream_fault():
    with pytest.raises(errors.UpstreamFault, match="unreadable contentBlockDelta"):
        ConverseStream("m", False, "bedrock").feed("contentBlockDelta", b"{nope")


def test_frames_become_events_and_exceptions():
    decoder = eventstream.Decoder()
    data = (event_frame("contentBlockDelta", {"delta": {"text": "a"}})
            + exception_frame("throttlingException", "slow down")
            + frame({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""))
    assert [_event(m) for m in decoder.feed(data)] == [
        ("contentBlockDelta", b'{"delta":{"text":"a"}}'),
        ("throttlingException", b'{"message":"slow down"}'),
        ("InternalFailureException", b'{"message":"boom"}')]


# -- errors ---------------------------------------------------------------------

ERRORS = orjson.loads(recorded("errors.json"))
KINDS = {
    "ThrottlingException": (errors.RateLimited, 429, "rate_limit_exceeded"),
    "ServiceQuotaExceededException": (errors.RateLimited, 429, "rate_limit_exceeded"),
    "ValidationException": (errors.BadRequest, 400, None),
    "ValidationException_context": (errors.BadRequest, 400, "context_length_exceeded"),
    "ValidationException_input_too_long": (errors.BadRequest, 400, "context_length_exceeded"),
    "AccessDeniedException": (errors.AuthFailed, 502, "upstream_auth_failed"),
    "UnrecognizedClientException": (errors.AuthFailed, 502, "upstream_auth_failed"),
    "InvalidSignatureException": (errors.AuthFailed, 502, "upstream_auth_failed"),
    "ResourceNotFoundException": (errors.BadRequest, 404, "model_not_found"),
    "ModelTimeoutException": (errors.UpstreamTimeout, 504, "upstream_timeout"),
    "ModelErrorException": (errors.UpstreamFault, 502, "upstream_error"),
    "InternalServerException": (errors.UpstreamFault, 502, "upstream_error"),
    "ServiceUnavailableException": (errors.UpstreamFault, 502, "upstream_error"),
    "ModelNotReadyException": (errors.UpstreamFault, 502, "upstream_error"),
}


def recorded_error(name: str, **headers: str) -> errors.ProviderError:
    spec = ERRORS[name]
    kind = spec.get("type", name)
    service = spec.get("service", "com.amazon.bedrock")
    return parse_error(spec["status"], orjson.dumps(spec["body"]),
                       {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/{service}/", **headers},
                       provider="bedrock", secrets=("FwoGZXIvYXdzEXAMPLETOKEN",))


@pytest.mark.parametrize("name", sorted(KINDS))
def test_recorded_errors_map_to_their_kind(name):
    kind, status, code = KINDS[name]
    err = recorded_error(name)
    assert type(err) is kind and err.status == status and err.code == code
    assert err.retryable is (kind is not errors.BadRequest)
    assert err.upstream_status == ERRORS[name]["status"]


def test_throttling_keeps_the_retry_hint():
    assert recorded_error("ThrottlingException", **{"retry-after": "3"}).retry_after == 3


def test_signature_errors_do_not_leak_what_aws_echoes():
    err = recorded_error("InvalidSignatureException")
    assert "does not match the signature you provided" in err.message
    for leaked in ("FwoGZXIvYXdzEXAMPLETOKEN", "Canonical String", "String-to-Sign", "x-amz-date"):
        assert leaked not in err.message


def test_bodies_without_the_type_header():
    err = parse_error(403, b'{"__type": "com.amazon.coral.service#UnrecognizedClientException", '
                           b'"Message": "The security token included in the request is invalid."}', {},
                      provider="bedrock")
    assert type(err) is errors.AuthFailed and "security token" in err.message
    plain = parse_error(502, b"<html>Bad Gateway</html>", {}, provider="bedrock")
    assert type(plain) is errors.UpstreamFault and "Bad Gateway" in plain.message
    empty = parse_error(429, b"", {}, provider="bedrock")
    assert type(empty) is errors.RateLimited


def test_secrets_are_scrubbed_from_messages():
    err = parse_error(400, b'{"message": "bad key wJalrXUtnFEMI in request"}',
                      {"x-amzn-errortype": "ValidationException"}, provider="bedrock", secrets=("wJalrXUtnFEMI",))
    assert "wJalrXUtnFEMI" not in err.message and "***" in err.message
