"""Gemini adapter translation, as pure functions on recorded payloads."""
from __future__ import annotations

import base64
import struct

import orjson
import pytest

from providers import errors, sse
from providers.base import Call
from providers.gemini import GeminiProvider, answer, api, chat, embeddings
from providers.gemini.errors import parse_error
from providers.gemini.schema import gemini_schema
from providers.gemini.stream import GeminiStream
from tests.upstreams.gemini_fake import recorded

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 8).decode()
USER = {"role": "user", "content": "What is the weather in Paris and Tokyo?"}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


def body(**data) -> dict:
    data.setdefault("messages", [USER])
    return orjson.loads(chat.generate_body({"model": "gemini-2.5-flash", **data}))


def call(stream: bool = False, op: str = "chat", **data) -> Call:
    data = {"model": "public", **data}
    return Call(op, orjson.dumps(data), data, "gemini-2.5-flash", stream)


# -- requests -----------------------------------------------------------------

def test_roles_system_and_unicode():
    out = body(messages=[{"role": "system", "content": "Be brief."},
                         {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                         {"role": "user", "content": "Bonjour é 🚀"},
                         {"role": "assistant", "content": "Salut !"},
                         {"role": "user", "content": "Ça va ?"}])
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "Bonjour é 🚀"}]},
                               {"role": "model", "parts": [{"text": "Salut !"}]},
                               {"role": "user", "parts": [{"text": "Ça va ?"}]}]
    assert "generationConfig" not in out and "tools" not in out


def test_empty_content():
    out = body(messages=[{"role": "user", "content": ""}, {"role": "assistant", "content": ""},
                         {"role": "user", "content": []}])
    # An empty assistant turn has no parts Gemini would take; user turns keep their (empty) text.
    assert out["contents"] == [{"role": "user", "parts": [{"text": ""}]}, {"role": "user", "parts": [{"text": ""}]}]


def test_generation_config():
    out = body(temperature=0.2, top_p=0.9, max_completion_tokens=64, max_tokens=10, stop="END", n=2, seed=7,
               presence_penalty=0.5, frequency_penalty=-0.5, user="u1", parallel_tool_calls=True)
    assert out["generationConfig"] == {"temperature": 0.2, "topP": 0.9, "seed": 7, "presencePenalty": 0.5,
                                       "frequencyPenalty": -0.5, "candidateCount": 2, "maxOutputTokens": 64,
                                       "stopSequences": ["END"]}
    assert "candidateCount" not in body(n=1).get("generationConfig", {})


def test_json_modes():
    assert body(response_format={"type": "json_object"})["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#",
              "properties": {"city": {"type": "string"}, "temp": {"type": "number"}}, "required": ["city", "temp"]}
    config = body(response_format={"type": "json_schema",
                                   "json_schema": {"name": "w", "strict": True, "schema": schema}})["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseSchema": {
        "type": "OBJECT", "properties": {"city": {"type": "STRING"}, "temp": {"type": "NUMBER"}},
        "required": ["city", "temp"]}}
    assert body(response_format={"type": "text"}).get("generationConfig") is None


def test_schema_cut_to_what_gemini_takes():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
        "title": "Args", "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit"},
            "when": {"type": "string", "format": "date-time", "default": "now"},
            "site": {"type": "string", "format": "uri"},
            "days": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "note": {"type": ["string", "null"]},
            "kind": {"const": "forecast"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "level": {"type": "integer", "enum": [1, 2]},
            "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        },
        "required": ["unit", "missing"],
    }
    assert gemini_schema(schema, "tools") == {
        "type": "OBJECT",
        "properties": {
            "unit": {"type": "STRING", "enum": ["c", "f"], "description": "unit"},
            "when": {"type": "STRING", "format": "date-time"},
            "site": {"type": "STRING"},
            "days": {"type": "INTEGER", "minimum": 1, "nullable": True},
            "note": {"type": "STRING", "nullable": True},
            "kind": {"type": "STRING", "enum": ["forecast"]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
            "level": {"type": "INTEGER"},
            "either": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
        },
        "required": ["unit"],
    }


def test_recursive_schema_is_refused():
    schema = {"type": "object", "properties": {"root": {"$ref": "#/$defs/Node"}},
              "$defs": {"Node": {"type": "object", "properties": {"children": {"type": "array",
                                                                            "items": {"$ref": "#/$defs/Node"}}}}}}
    with pytest.raises(errors.BadRequest) as e:
        gemini_schema(schema, "tools")
    assert e.value.param == "tools" and "recursive" in e.value.message


def test_tools_and_tool_choice():
    ping = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    out = body(tools=[WEATHER, ping], tool_choice="auto")
    assert out["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather for a city",
         "parameters": {"type": "OBJECT", "properties": {"location": {"type": "STRING"}}, "required": ["location"]}},
        {"name": "ping"}]}]     # no properties: no parameters, which Gemini would refuse
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body(tools=[WEATHER], tool_choice="required")["toolConfig"]["functionCallingConfig"] == {"mode": "ANY"}
    assert body(tools=[WEATHER], tool_choice="none")["toolConfig"]["functionCallingConfig"] == {"mode": "NONE"}
    named = body(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert named["toolConfig"]["functionCallingConfig"] == {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    assert "toolConfig" not in body(tool_choice="none")


@pytest.mark.parametrize("data,param", [
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ({"tools": [{"type": "web_search"}]}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": [1]}}]}, "tools"),
    ({"logprobs": True}, "logprobs"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"response_format": {"type": "xml"}}, "response_format"),
])
def test_what_gemini_cannot_honour_is_refused(data, param):
    with pytest.raises(errors.BadRequest) as e:
        body(**data)
    assert e.value.status == 400 and e.value.param == param


def tool_turns(signature: bool = True) -> list[dict]:
    first = {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}
    if signature:
        first["extra_content"] = {"google": {"thought_signature": "c2lnLTE="}}
    return [USER,
            {"role": "assistant", "content": None, "tool_calls": [
                first,
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21, "sky": "clear"}'},
            {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "10:00 ✓"}]},
            {"role": "user", "content": "Thanks"}]


def test_parallel_tool_calls_and_results():
    out = body(messages=tool_turns())
    assert out["contents"][1:] == [
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": "c2lnLTE="},
            {"functionCall": {"name": "get_time", "args": {}}}]},
        {"role": "user", "parts": [   # both results in one turn, names found from the call ids
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21, "sky": "clear"}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "10:00 ✓"}}}]},
        {"role": "user", "parts": [{"text": "Thanks"}]}]


def test_a_call_without_its_signature_gets_the_documented_stand_in():
    parts = body(messages=tool_turns(signature=False))["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == chat.SKIP_SIGNATURE
    assert "thoughtSignature" not in parts[1]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_tool_arguments_are_refused(arguments):
    msgs = tool_turns()
    msgs[1]["tool_calls"][0]["function"]["arguments"] = arguments
    with pytest.raises(errors.BadRequest) as e:
        body(messages=msgs)
    assert e.value.param == "messages" and "arguments" in e.value.message


def test_tool_result_for_an_unknown_call_is_refused():
    with pytest.raises(errors.BadRequest) as e:
        body(messages=[USER, {"role": "tool", "tool_call_id": "call_zz", "content": "x"}])
    assert "call_zz" in e.value.message


def test_images_audio_and_files():
    parts = body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.WEBP?size=2#top", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photo"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
    ]}])["contents"][0]["parts"]
    assert parts == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.WEBP?size=2#top"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


@pytest.mark.parametrize("part", [
    {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}},
    {"type": "file", "file": {"file_id": "file-123"}},
    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "flac"}},
    {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
])
def test_unsupported_parts_are_refused(part):
    with pytest.raises(errors.BadRequest) as e:
        body(messages=[{"role": "user", "content": [part]}])
    assert e.value.param == "messages"


def test_images_only_in_user_messages():
    with pytest.raises(errors.BadRequest):
        body(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]},
                       USER])


def test_where_and_how_it_is_sent():
    gp = GeminiProvider(api.Options(name="g", type="gemini", api_key="gm-secret", base_url="http://h/v1beta/",
                                    headers={"x-extra": "1"}))
    req = gp.request(call(messages=[USER]))
    assert req.url == "http://h/v1beta/models/gemini-2.5-flash:generateContent"
    assert req.headers == {"content-type": "application/json", "x-goog-api-key": "gm-secret", "x-extra": "1"}
    assert gp.request(call(stream=True, messages=[USER])).url == \
        "http://h/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert "gm-secret" not in req.url
    assert api.url(gp.options, "tunedModels/mine-1", "generateContent") == \
        "http://h/v1beta/tunedModels/mine-1:generateContent"
    assert api.Options(name="g", type="gemini").base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert GeminiProvider.disabled_reason(api.Options(name="g", type="gemini", api_key="")) == "api_key is empty"


# -- answers ------------------------------------------------------------------

def completion(name: str, **kw) -> dict:
    out, _ = answer.completion(recorded(name), "gemini-2.5-flash", **kw)
    return orjson.loads(out)


def test_text_answer_and_usage():
    out, usage = answer.completion(recorded("generate_text.json"), "asked-for")
    doc = orjson.loads(out)
    assert doc["id"] == "qpc2afWVFJK4vr0Pq6WiyAU" and doc["model"] == "gemini-2.5-flash"
    assert doc["object"] == "chat.completion"
    assert doc["choices"] == [{"index": 0, "logprobs": None, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Hello there, friend é 🚀", "refusal": None}}]
    assert doc["usage"] == {"prompt_tokens": 12, "completion_tokens": 37, "total_tokens": 49,
                            "prompt_tokens_details": {"cached_tokens": 4},
                            "completion_tokens_details": {"reasoning_tokens": 30}}
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (12, 37, 4)


def test_parallel_function_calls_answer():
    choice = completion("generate_tool_calls.json")["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"location": "Paris", "unit": "celsius"}, {"location": "Tokyo", "unit": "celsius"}]
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert calls[0]["extra_content"] == {"google": {"thought_signature":
                                                    "CikBcsjafFK168IbtVtoxVV0Tsn8O+eU45rzJahzwuKGmMbdMdfpmNpgBwpl"}}
    assert "extra_content" not in calls[1]
    only = completion("generate_tool_calls.json", single_call=True)["choices"][0]["message"]["tool_calls"]
    assert len(only) == 1


def test_answer_round_trips_into_the_next_request():
    msg = completion("generate_tool_calls.json")["choices"][0]["message"]
    msgs = [USER, msg] + [{"role": "tool", "tool_call_id": c["id"], "content": "sunny"} for c in msg["tool_calls"]]
    contents = body(messages=msgs)["contents"]
    assert contents[1]["parts"][0]["thoughtSignature"].startswith("CikB")
    assert [p["functionResponse"]["name"] for p in contents[2]["parts"]] == ["get_weather", "get_weather"]


def test_candidates_become_choices_with_their_finish_reasons():
    doc = completion("generate_two_candidates.json")
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in doc["choices"]] == [
        (0, "Blue.", "stop"), (1, "The sky is usually blue", "length")]
    assert doc["model"] == "gemini-2.0-flash" and doc["id"].startswith("chatcmpl-")


def test_safety_stop_is_a_content_filter_finish():
    choice = completion("generate_safety.json")["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["message"]["content"] == ""


def test_thought_summaries_are_left_out():
    doc = completion("generate_thoughts.json")
    assert doc["choices"][0]["message"]["content"] == "2 + 2 = 4."
    assert doc["usage"]["completion_tokens_details"]["reasoning_tokens"] == 41


def test_blocked_prompt_is_a_clear_400():
    with pytest.raises(errors.BadRequest) as e:
        answer.completion(recorded("generate_blocked.json"), "m")
    assert (e.value.status, e.value.code, e.value.param) == (400, "content_filter", "messages")
    assert "PROHIBITED_CONTENT" in e.value.message


@pytest.mark.parametrize("raw", [b"<html>oops</html>", b"[]", b'{"usageMetadata": {}}'])
def test_malformed_answers_are_upstream_faults(raw):
    with pytest.raises(errors.UpstreamFault):
        answer.completion(raw, "m")


def test_model_falls_back_to_the_requested_one():
    raw = b'{"candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"}, "finishReason": "STOP"}]}'
    doc = orjson.loads(answer.completion(raw, "gemini-2.5-flash")[0])
    assert doc["model"] == "gemini-2.5-flash" and doc["usage"]["total_tokens"] == 0


# -- streams ------------------------------------------------------------------

def run_stream(name: str, **data) -> tuple[list[dict], GeminiStream]:
    t = GeminiStream(call(stream=True, **data), provider="g")
    chunks = [c for _, d in sse.events(recorded(name)) for c in t.feed(None, d)]
    return chunks + t.end(), t


def test_text_stream():
    chunks, t = run_stream("stream_text.sse", stream_options={"include_usage": True})
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == \
        "Hello there, friend é 🚀"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert {c["id"] for c in chunks} == {"IZI2acSKMoWl0-kPmYj2yQc"}
    assert {c["model"] for c in chunks} == {"gemini-2.5-flash"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 37
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    assert (t.usage.prompt_tokens, t.usage.completion_tokens) == (12, 37)


def test_stream_without_include_usage_has_no_usage_chunk():
    chunks, t = run_stream("stream_text.sse")
    assert all(c["choices"] for c in chunks) and t.usage.prompt_tokens == 12


def test_tool_call_stream():
    chunks, _ = run_stream("stream_tool_calls.sse")
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[1] == {"content": "Let me check both cities."}
    calls = deltas[2]["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1]
    assert [orjson.loads(c["function"]["arguments"])["location"] for c in calls] == ["Paris", "Tokyo"]
    assert calls[0]["extra_content"]["google"]["thought_signature"].startswith("CikB")
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    single, _ = run_stream("stream_tool_calls.sse", parallel_tool_calls=False)
    assert len(single[2]["choices"][0]["delta"]["tool_calls"]) == 1


def test_stream_of_two_candidates():
    t = GeminiStream(call(stream=True, n=2), provider="g")
    events = [{"candidates": [{"content": {"parts": [{"text": "A"}]}, "index": 0},
                              {"content": {"parts": [{"text": "B"}]}, "index": 1}]},
              {"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0},
                              {"content": {"parts": [{"text": "!"}]}, "finishReason": "MAX_TOKENS", "index": 1}]}]
    chunks = [c for e in events for c in t.feed(None, orjson.dumps(e))] + t.end()
    by_choice: dict[int, list] = {0: [], 1: []}
    for c in chunks:
        by_choice[c["choices"][0]["index"]].append(c["choices"][0])
    assert [x["finish_reason"] for x in by_choice[0]][-1] == "stop"
    assert [x["finish_reason"] for x in by_choice[1]][-1] == "length"
    assert "".join(x["delta"].get("content", "") for x in by_choice[1]) == "B!"


def test_stream_ended_without_finish_reason_is_closed():
    t = GeminiStream(call(stream=True), provider="g")
    t.feed(None, b'{"candidates": [{"content": {"parts": [{"text": "cut"}]}}]}')
    assert t.end()[0]["choices"][0]["finish_reason"] == "stop"


def test_error_event_inside_the_stream_raises_its_kind():
    t = GeminiStream(call(stream=True), provider="g", secret="k")
    events = [d for _, d in sse.events(recorded("stream_error.sse"))]
    assert t.feed(None, events[0])
    with pytest.raises(errors.UpstreamFault) as e:
        t.feed(None, events[1])
    assert "overloaded" in e.value.message and e.value.provider == "g"


def test_blocked_stream_and_empty_stream():
    t = GeminiStream(call(stream=True), provider="g")
    with pytest.raises(errors.BadRequest) as e:
        t.feed(None, next(sse.events(recorded("stream_blocked.sse")))[1])
    assert e.value.code == "content_filter"
    with pytest.raises(errors.UpstreamFault):
        GeminiStream(call(stream=True), provider="g").end()


# -- errors -------------------------------------------------------------------

@pytest.mark.parametrize("status,file,kind", [
    (400, "error_400_api_key_invalid.json", errors.AuthFailed),
    (403, "error_403_permission.json", errors.AuthFailed),
    (429, "error_429_quota.json", errors.RateLimited),
    (400, "error_400_context.json", errors.BadRequest),
    (400, "error_400_invalid.json", errors.BadRequest),
    (404, "error_404_model.json", errors.BadRequest),
    (500, "error_500_internal.json", errors.UpstreamFault),
    (503, "error_503_overloaded.json", errors.UpstreamFault),
    (504, "error_504_deadline.json", errors.UpstreamTimeout),
])
def test_error_kinds_from_recorded_bodies(status, file, kind):
    err = parse_error(status, recorded(file), {}, provider="g")
    assert type(err) is kind
    assert err.retryable is (kind is not errors.BadRequest)


def test_rate_limit_retry_hints():
    assert parse_error(429, recorded("error_429_quota.json"), {"retry-after": "5"}, provider="g").retry_after == 29
    assert parse_error(429, recorded("error_429_no_hint.json"), {"retry-after": "5"}, provider="g").retry_after == 5
    precise = orjson.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "slow down", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.837906927s"}]}})
    assert parse_error(429, precise, {}, provider="g").retry_after == pytest.approx(45.837906927)


def test_bad_requests_keep_the_upstream_message():
    ctx = parse_error(400, recorded("error_400_context.json"), {}, provider="g")
    assert (ctx.status, ctx.code, ctx.param) == (400, "context_length_exceeded", "messages")
    assert ctx.message.startswith("The input token count (1200293)")
    missing = parse_error(404, recorded("error_404_model.json"), {}, provider="g")
    assert (missing.status, missing.code) == (404, "model_not_found")
    assert "temperature" in parse_error(400, recorded("error_400_invalid.json"), {}, provider="g").message


def test_key_is_scrubbed_and_odd_bodies_survive():
    raw = b'{"error": {"code": 400, "message": "API key gm-secret-1 is bad", "status": "INVALID_ARGUMENT"}}'
    assert "gm-secret-1" not in parse_error(400, raw, {}, provider="g", secret="gm-secret-1").message
    wrapped = b'[' + recorded("error_503_overloaded.json") + b']'
    assert "overloaded" in parse_error(503, wrapped, {}, provider="g").message
    assert parse_error(502, b"<html>Bad gateway</html>", {}, provider="g").message.endswith("<html>Bad gateway</html>")
    assert parse_error(500, b"", {}, provider="g").message.endswith("HTTP 500")


# -- embeddings ---------------------------------------------------------------

def test_embedding_requests():
    one = {"model": "e", "input": "hello", "dimensions": 4}
    assert embeddings.method(one) == "embedContent"
    assert orjson.loads(embeddings.request_body(one, "gemini-embedding-001")) == {
        "model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 4}
    many = {"model": "e", "input": ["a", "b"]}
    assert embeddings.method(many) == "batchEmbedContents"
    assert orjson.loads(embeddings.request_body(many, "gemini-embedding-001")) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}]}
    assert embeddings.method({"input": ["only"]}) == "embedContent"
    with pytest.raises(errors.BadRequest) as e:
        embeddings.request_body({"input": [[1, 2, 3]]}, "m")
    assert e.value.param == "input"


def test_embedding_answers_float_and_base64():
    data = {"input": ["a", "b"]}
    doc = orjson.loads(embeddings.answer(data, recorded("batch_embed_contents.json"), "m")[0])
    assert doc["object"] == "list" and doc["model"] == "m"
    assert [d["index"] for d in doc["data"]] == [0, 1]
    assert doc["data"][1]["embedding"][0] == -0.02452137
    assert doc["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    b64 = orjson.loads(embeddings.answer({**data, "encoding_format": "base64"},
                                         recorded("batch_embed_contents.json"), "m")[0])
    raw = base64.b64decode(b64["data"][0]["embedding"])
    assert struct.unpack("<4f", raw) == pytest.approx([0.013168523, -0.008711934, -0.046782676, 0.00069968984])
    single, usage = embeddings.answer({"input": "x"}, b'{"embedding": {"values": [1.5]}, '
                                                      b'"usageMetadata": {"promptTokenCount": 3}}', "m")
    assert orjson.loads(single)["usage"]["prompt_tokens"] == 3 and usage.prompt_tokens == 3


def test_embedding_answer_that_does_not_match_is_a_fault():
    with pytest.raises(errors.UpstreamFault):
        embeddings.answer({"input": ["a", "b", "c"]}, recorded("batch_embed_contents.json"), "m")
    with pytest.raises(errors.UpstreamFault):
        embeddings.answer({"input": "a"}, b'{"nothing": 1}', "m")


@pytest.mark.parametrize("effort, budget", [("none", 0), ("low", 1024), ("medium", 8192), ("high", 24576)])
def test_reasoning_effort_is_a_thinking_budget(effort, budget):
    assert body(reasoning_effort=effort)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": budget}
