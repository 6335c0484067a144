"""Anthropic adapter translation, as pure functions on recorded payloads:
OpenAI request -> Messages request, message -> chat.completion, stream
events -> chunks, error bodies -> failure kinds."""
from __future__ import annotations

import base64

import orjson
import pydantic
import pytest

from providers import errors, sse
from providers.anthropic import answer, api, chat
from providers.anthropic.errors import parse_error
from providers.anthropic.stream import Translator
from tests.upstreams.anthropic_fake import recorded

OPTIONS = api.Options(name="claude", type="anthropic", api_key="sk-ant-secret")
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}


def translate(data: dict, options: api.Options = OPTIONS, stream: bool = False) -> dict:
    return orjson.loads(chat.body(data, "claude-sonnet-4-5", options, "claude", stream))


def req(*messages: dict, **params) -> dict:
    return {"model": "m", "messages": list(messages), **params}


def user(content) -> dict:
    return {"role": "user", "content": content}


def refused(data: dict) -> errors.BadRequest:
    with pytest.raises(errors.BadRequest) as e:
        translate(data)
    assert e.value.status == 400 and not e.value.retryable
    return e.value


# -- requests ---------------------------------------------------------------------

def test_system_and_developer_are_hoisted_in_order_and_max_tokens_defaults():
    out = translate(req({"role": "system", "content": "Be brief."}, user("Hi é 🚀"),
                        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]}))
    assert out == {"model": "claude-sonnet-4-5", "max_tokens": 4096,
                   "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}],
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi é 🚀"}]}]}


def test_sampling_parameters_and_limits():
    out = translate(req(user("x"), max_tokens=10, max_completion_tokens=20, stop="END", temperature=1.7,
                        top_p=0.9, user="u-42", presence_penalty=1, frequency_penalty=1, seed=7,
                        service_tier="auto", store=True, metadata={"a": "b"}), stream=True)
    assert out["max_tokens"] == 20                       # max_completion_tokens wins, as at OpenAI
    assert out["stop_sequences"] == ["END"]
    assert out["temperature"] == 1                       # Anthropic's range ends at 1
    assert out["top_p"] == 0.9 and out["metadata"] == {"user_id": "u-42"} and out["stream"] is True
    for dropped in ("presence_penalty", "frequency_penalty", "seed", "service_tier", "store"):
        assert dropped not in out
    assert translate(req(user("x"), safety_identifier="hash-1", stop=["a", "b"]))["metadata"] == {"user_id": "hash-1"}


def test_consecutive_turns_merge_and_empty_ones_vanish():
    out = translate(req(user("one"), user([{"type": "text", "text": "two"}]), {"role": "assistant", "content": ""},
                        user("")))
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "one"},
                                                            {"type": "text", "text": "two"}]}]


def test_parallel_tool_calls_and_results_round_trip():
    out = translate(req(
        user("Weather in Paris and Tokyo?"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "25°C"}]},
        user("Thanks!"), tools=[WEATHER]))
    assert out["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25°C"},
            {"type": "text", "text": "Thanks!"}]}]
    assert out["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                             "input_schema": WEATHER["function"]["parameters"]}]


@pytest.mark.parametrize("arguments,why", [('{"location": ', "not valid JSON"), ('["Paris"]', "a JSON object")])
def test_bad_tool_call_arguments_are_refused(arguments, why):
    err = refused(req(user("x"), {"role": "assistant", "tool_calls": [
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": arguments}}]}))
    assert why in err.message and err.param == "messages[1].tool_calls"


def test_images_by_data_url_and_https_url():
    out = translate(req(user([
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}])))
    data = PNG.split(",", 1)[1]
    assert out["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]


def test_pdf_files_and_cache_markers_pass():
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4").decode()
    out = translate(req({"role": "system", "content": [{"type": "text", "text": "Long rules",
                                                        "cache_control": {"type": "ephemeral"}}]},
                        user([{"type": "file", "file": {"file_data": pdf, "filename": "a.pdf"}}])))
    assert out["system"] == [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]
    assert out["messages"][0]["content"][0]["type"] == "document"


@pytest.mark.parametrize("part,param", [
    ({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}, "messages[0].content"),
    ({"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}, "messages[0].content"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "messages[0].content"),
    ({"type": "file", "file": {"file_id": "file-abc"}}, "messages[0].content"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, "messages"),
])
def test_unsupported_content_is_refused(part, param):
    assert refused(req(user([part]))).param == param


def test_roles_anthropic_has_no_place_for_are_refused():
    assert refused(req(user("x"), {"role": "function", "name": "f", "content": "1"})).param == "messages[1].role"
    assert refused(req({"role": "system", "content": "only rules"})).param == "messages"
    assert refused(req(user("x"), {"role": "tool", "content": "1"})).param == "messages[1].tool_call_id"


@pytest.mark.parametrize("choice,parallel,expected", [
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ("none", False, {"type": "none"}),
    (None, None, None),
])
def test_tool_choice(choice, parallel, expected):
    params = {"tools": [WEATHER]}
    if choice is not None:
        params["tool_choice"] = choice
    if parallel is not None:
        params["parallel_tool_calls"] = parallel
    assert translate(req(user("x"), **params)).get("tool_choice") == expected


def test_tool_choice_that_cannot_work_is_refused():
    assert refused(req(user("x"), tool_choice="required")).param == "tool_choice"
    assert refused(req(user("x"), tools=[WEATHER],
                       tool_choice={"type": "function", "function": {"name": "nope"}})).param == "tool_choice"
    assert refused(req(user("x"), tools=[WEATHER], tool_choice="sometimes")).param == "tool_choice"
    assert refused(req(user("x"), tools=[{"type": "web_search"}])).param == "tools"
    assert "tool_choice" not in translate(req(user("x"), tool_choice="auto"))


def test_json_modes_become_a_system_instruction_unless_structured_outputs():
    out = translate(req({"role": "system", "content": "Be brief."}, user("x"), response_format={"type": "json_object"}))
    assert out["system"][-1] == {"type": "text", "text": chat.JSON_ONLY}
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}}
    text = translate(req(user("x"), response_format=fmt))["system"][0]["text"]
    assert text.startswith(chat.JSON_ONLY) and "'place'" in text and orjson.dumps(schema).decode() in text
    native = api.Options(name="c", type="anthropic", api_key="k", structured_outputs=True)
    out = translate(req(user("x"), response_format=fmt, tools=[{**WEATHER, "function": {**WEATHER["function"],
                                                                                     "strict": True}}]), native)
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}} and "system" not in out
    assert out["tools"][0]["strict"] is True
    assert translate(req(user("x"), response_format={"type": "text"})).get("system") is None
    assert refused(req(user("x"), response_format={"type": "json_schema"})).param == "response_format"


@pytest.mark.parametrize("params,param", [
    ({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 3}, "top_logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"), ({"modalities": ["text", "audio"]}, "modalities"),
    ({"functions": [{"name": "f"}]}, "functions"),
])
def test_what_anthropic_cannot_honour_is_refused(params, param):
    err = refused(req(user("x"), **params))
    assert err.param == param and err.code == "unsupported_parameter"


def test_harmless_defaults_are_accepted():
    out = translate(req(user("x"), n=1, logprobs=False, logit_bias={}, modalities=["text"]))
    assert out["messages"][0]["role"] == "user"


# -- answers ----------------------------------------------------------------------

def test_text_answer_and_usage_with_cache():
    body, usage = answer.translate(recorded("message.json"), provider="claude")
    doc = orjson.loads(body)
    assert doc["id"] == "msg_01T4jd6NyD9xGGtTPDC4ogy5" and doc["model"] == "claude-sonnet-4-5-20250929"
    assert doc["object"] == "chat.completion"
    assert doc["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello there, friend é 🚀",
                                                       "refusal": None}, "logprobs": None, "finish_reason": "stop"}]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.cache_write_tokens) == \
        (406 + 1200 + 100, 50, 1200, 100)
    assert doc["usage"]["total_tokens"] == 1756 and doc["usage"]["prompt_tokens_details"]["cached_tokens"] == 1200


def test_parallel_tool_use_answer():
    doc = orjson.loads(answer.translate(recorded("message_tool_use.json"), provider="claude")[0])
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll get the weather for both cities."
    calls = choice["message"]["tool_calls"]
    assert [c["id"] for c in calls] == ["toolu_01LRanfq6DmHn1yDTB4d1SAh", "toolu_011MDRpaZRMRRjtFkJizD6nS"]
    assert orjson.loads(calls[1]["function"]["arguments"]) == {"location": "London, UK", "units": "c"}
    assert calls[0]["type"] == "function" and calls[0]["function"]["name"] == "get_weather"


def test_tool_only_answer_has_null_content():
    doc = orjson.loads(recorded("message_tool_use.json"))
    doc["content"] = doc["content"][1:]
    out = orjson.loads(answer.translate(orjson.dumps(doc), provider="claude")[0])
    assert out["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize("stop_reason,finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
    (None, "stop")])
def test_stop_reasons(stop_reason, finish):
    doc = {**orjson.loads(recorded("message.json")), "stop_reason": stop_reason}
    if stop_reason == "refusal":
        doc["content"] = []
    out = orjson.loads(answer.translate(orjson.dumps(doc), provider="claude")[0])
    assert out["choices"][0]["finish_reason"] == finish
    assert out["choices"][0]["message"]["content"] == ("" if stop_reason == "refusal" else "Hello there, friend é 🚀")


def test_an_answer_that_is_not_a_message_is_an_upstream_fault():
    for body in (b"<html>", b'{"type": "completion"}'):
        with pytest.raises(errors.UpstreamFault):
            answer.translate(body, provider="claude")


# -- streams ----------------------------------------------------------------------

def run_stream(file: str | bytes, include_usage: bool = False) -> tuple[list[dict], Translator]:
    data = {"stream": True, **({"stream_options": {"include_usage": True}} if include_usage else {})}
    t = Translator(data, "claude-sonnet-4-5", provider="claude", secret="sk-ant-secret")
    raw = recorded(file) if isinstance(file, str) else file
    chunks = [c for event, body in sse.events(raw) for c in t.feed(event, body)]
    return chunks + t.end(), t


def test_text_stream_with_usage_chunk():
    chunks, t = run_stream("stream_text.sse", include_usage=True)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == \
        "Hello there, friend é 🚀"
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 31
    assert {c["id"] for c in chunks} == {"msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"}
    assert {c["model"] for c in chunks} == {"claude-sonnet-4-5-20250929"}
    assert (t.usage.prompt_tokens, t.usage.completion_tokens, t.usage.cached_tokens) == (31, 6, 20)


def test_usage_chunk_only_when_asked():
    chunks, t = run_stream("stream_text.sse")
    assert all(c["choices"] for c in chunks) and t.usage.completion_tokens == 6


def test_parallel_tool_use_stream():
    chunks, _ = run_stream("stream_tool_use.sse")
    calls: dict[int, dict] = {}
    for c in chunks:
        for d in c["choices"][0]["delta"].get("tool_calls", []) if c["choices"] else []:
            call = calls.setdefault(d["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = d.get("id") or call["id"]
            call["name"] = d.get("function", {}).get("name") or call["name"]
            call["arguments"] += d["function"].get("arguments", "")
    assert calls == {
        0: {"id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "name": "get_weather", "arguments": '{"location": "Paris"}'},
        1: {"id": "toolu_01Q5r9sPNdgbAhSuXcXjHmXN", "name": "get_weather", "arguments": '{"location": "Tokyo"}'}}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_refusal_stream_ends_with_content_filter():
    chunks, _ = run_stream("stream_refusal.sse")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"


def test_error_before_content_sends_nothing_and_raises():
    t = Translator({}, "m", provider="claude")
    events = list(sse.events(recorded("stream_overloaded.sse")))
    assert [c for e, d in events[:-1] for c in t.feed(e, d)] == []     # so the router can still fail over
    with pytest.raises(errors.UpstreamFault) as e:
        t.feed(*events[-1])
    assert e.value.retryable and "Overloaded" in e.value.message


@pytest.mark.parametrize("type_,kind", [("rate_limit_error", errors.RateLimited),
                                        ("api_error", errors.UpstreamFault),
                                        ("overloaded_error", errors.UpstreamFault),
                                        ("timeout_error", errors.UpstreamTimeout),
                                        ("invalid_request_error", errors.BadRequest)])
def test_stream_error_events(type_, kind):
    t = Translator({}, "m", provider="claude", secret="sk-ant-secret")
    event = orjson.dumps({"type": "error", "error": {"type": type_, "message": "boom sk-ant-secret"}})
    with pytest.raises(kind) as e:
        t.feed("error", event)
    assert "sk-ant-secret" not in e.value.message


def test_stream_without_message_stop_is_cut_off():
    cut = recorded("stream_text.sse").split(b"event: message_delta")[0]
    with pytest.raises(errors.UpstreamFault):
        run_stream(cut)


# -- errors -----------------------------------------------------------------------

@pytest.mark.parametrize("status,file,kind,retryable,client_status,code", [
    (400, "error_400_context.json", errors.BadRequest, False, 400, "context_length_exceeded"),
    (400, "error_400_invalid.json", errors.BadRequest, False, 400, None),
    (400, "error_400_credit.json", errors.AuthFailed, True, 502, "upstream_auth_failed"),
    (401, "error_401.json", errors.AuthFailed, True, 502, "upstream_auth_failed"),
    (403, "error_403.json", errors.AuthFailed, True, 502, "upstream_auth_failed"),
    (404, "error_404.json", errors.BadRequest, False, 404, "model_not_found"),
    (413, "error_413.json", errors.BadRequest, False, 413, "request_too_large"),
    (429, "error_429.json", errors.RateLimited, True, 429, "rate_limit_exceeded"),
    (500, "error_500.json", errors.UpstreamFault, True, 502, "upstream_error"),
    (529, "error_529.json", errors.UpstreamFault, True, 502, "upstream_error"),
])
def test_error_kinds_from_recorded_bodies(status, file, kind, retryable, client_status, code):
    err = parse_error(status, recorded(file), {}, provider="claude")
    assert type(err) is kind and err.retryable is retryable
    assert (err.status, err.code, err.upstream_status) == (client_status, code, status)
    assert orjson.loads(recorded(file))["error"]["message"] in err.message     # the upstream's words kept


def test_context_length_names_messages():
    err = parse_error(400, recorded("error_400_context.json"), {}, provider="claude")
    assert err.param == "messages" and err.type == "invalid_request_error"
    assert err.message == "prompt is too long: 208310 tokens > 200000 maximum"


def test_rate_limit_reads_retry_after():
    assert parse_error(429, recorded("error_429.json"), {"retry-after": "12"}, provider="claude").retry_after == 12


def test_secret_is_scrubbed_and_odd_bodies_survive():
    body = b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-secret"}}'
    assert "sk-ant-secret" not in parse_error(401, body, {}, provider="c", secret="sk-ant-secret").message
    html = parse_error(413, b"<html>413 Request Entity Too Large</html>", {}, provider="c")
    assert html.status == 413 and "Too Large" in html.message
    assert parse_error(502, b"", {}, provider="c").message.endswith("HTTP 502")
    assert type(parse_error(504, b"{}", {}, provider="c")) is errors.UpstreamTimeout


# -- options and headers ------------------------------------------------------------

def test_headers_and_options():
    o = api.Options(name="c", type="anthropic", api_key="sk-ant-1", beta=["a-2025", "b-2026"],
                    headers={"x-extra": "1"})
    assert api.headers(o) == {"content-type": "application/json", "x-api-key": "sk-ant-1",
                              "anthropic-version": "2023-06-01", "anthropic-beta": "a-2025,b-2026", "x-extra": "1"}
    assert api.url(o) == "https://api.anthropic.com/v1/messages"
    assert o.default_max_tokens == 4096 and o.structured_outputs is False
    with pytest.raises(pydantic.ValidationError):
        api.Options(name="c", type="anthropic", api_key="k", max_token=5)


def test_an_empty_key_disables_the_provider():
    from providers.anthropic import AnthropicProvider
    assert AnthropicProvider.disabled_reason(api.Options(name="c", type="anthropic")) == "api_key is empty"
    assert AnthropicProvider.disabled_reason(OPTIONS) is None
