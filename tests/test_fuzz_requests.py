"""A property over the request parsers clients reach: random JSON-ish bodies
and query strings never give a 5xx and always OpenAI's error shape. The parser
functions (and the mock's reading of what they let through) take many examples;
the real app over loopback HTTP takes fewer, to stay quick."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.protocol import chat_request, embeddings_request
from gateway.video.protocol import parse_create
from providers import video_fit
from providers.mock.answers import ChatAnswer, TooLarge, embedding_answer
from tests.harness import base_config, chat_model
from tests.video.conftest import mock_video, video_model

# --- JSON-ish values, with the field names the parsers look at ---------------------------

_TEXT = st.text(max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | _TEXT
JSONISH = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=12)

CHAT_FIELDS = ["stream", "stream_options", "n", "max_tokens", "max_completion_tokens", "seed", "temperature",
               "top_p", "presence_penalty", "frequency_penalty", "tools", "tool_choice", "response_format", "stop"]
_PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]) | JSONISH}, optional={"text": JSONISH})
_CONTENT = _TEXT | st.lists(_PART | JSONISH, max_size=3) | JSONISH
_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool"])},
                                 optional={"content": _CONTENT, "name": JSONISH})
_FUNCTION = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["f", "g"]) | JSONISH, "parameters": st.fixed_dictionaries({}, optional={
        "properties": st.dictionaries(_TEXT, st.fixed_dictionaries({}, optional={
            "type": JSONISH, "enum": JSONISH}) | JSONISH, max_size=3) | JSONISH})}) | JSONISH
_TOOL = st.fixed_dictionaries({"type": st.just("function") | JSONISH}, optional={"function": _FUNCTION}) | JSONISH
_CHOICE = st.sampled_from(["auto", "none", "required"]) | st.fixed_dictionaries(
    {"type": st.just("function")}, optional={"function": st.fixed_dictionaries({}, optional={
        "name": JSONISH}) | JSONISH}) | JSONISH


def _with_fields(base: st.SearchStrategy, fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    return st.tuples(base, st.fixed_dictionaries({}, optional=fields)).map(lambda t: {**t[0], **t[1]})


_TYPED = {     # each field with a value of its type, so the body gets past the gateway to the mock
    "stream": st.booleans(), "stream_options": st.fixed_dictionaries({}, optional={"include_usage": JSONISH}),
    "n": st.integers(1, 4), "max_tokens": st.integers(1, 64), "temperature": st.floats(0, 2),
    "tools": st.lists(_TOOL, max_size=3), "tool_choice": _CHOICE,
    "response_format": st.fixed_dictionaries({"type": st.sampled_from(["json_object", "text"]) | JSONISH}),
    "stop": _TEXT}
CHAT = (_with_fields(      # mostly past the gateway's checks, so the mock's reading is reached too
    st.fixed_dictionaries({"model": st.just("chat"), "messages": st.lists(_MESSAGE, min_size=1, max_size=3)}),
    _TYPED)
    | _with_fields(
        st.fixed_dictionaries({"model": st.just("chat") | JSONISH, "messages": st.lists(_MESSAGE | JSONISH,
                                                                                        max_size=3)}),
        {f: JSONISH for f in CHAT_FIELDS}))
EMBEDDINGS = _with_fields(
    st.fixed_dictionaries({"model": st.just("embed") | JSONISH}),
    {"input": _TEXT | st.lists(_TEXT, max_size=4) | st.lists(st.integers(-5, 2**40), max_size=4)
     | st.lists(st.lists(st.integers(0, 100), max_size=3), max_size=3) | JSONISH,
     "dimensions": st.integers(-5, 70_000) | JSONISH,
     "encoding_format": st.sampled_from(["float", "base64"]) | JSONISH})
VIDEO = _with_fields(
    st.fixed_dictionaries({}, optional={"prompt": _TEXT | JSONISH, "model": st.just("mock-video") | JSONISH}),
    {**{f: JSONISH | _TEXT for f in ["seconds", "duration", "size", "resolution", "seed", "negative_prompt",
                                     "style_preset", "camera_movement", "callback_url", "input_reference"]},
     **{f: st.from_regex(r"[0-9]{1,5}x[0-9]{1,5}", fullmatch=True) for f in ["size", "resolution"]},
     **{f: st.integers(-5, 100) for f in ["seconds", "duration"]}})


def _body(value: Any) -> bytes:
    """As a client might write it: json.dumps also writes ints past 64 bits and Infinity."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _client_error(e: ApiError) -> None:
    assert 400 <= e.status < 500, (e.status, e.message)
    assert e.message


# --- the parser functions, many examples --------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(CHAT | JSONISH)
def test_chat_parser_and_the_mock_reading_it(value):
    try:
        data, stream = chat_request(_body(value))
    except ApiError as e:
        return _client_error(e)
    try:
        answer = ChatAnswer(data, "m", 8, "req")
    except TooLarge:
        return
    orjson.loads(answer.body())
    assert list(answer.events(3))[-1] == b"data: [DONE]\n\n"


@settings(max_examples=150, deadline=None)
@given(EMBEDDINGS | JSONISH)
def test_embeddings_parser_and_the_mock_reading_it(value):
    try:
        data = embeddings_request(_body(value))
    except ApiError as e:
        return _client_error(e)
    try:
        body, _ = embedding_answer(data, "m", 8)
    except TooLarge:
        return
    orjson.loads(body)


@settings(max_examples=150, deadline=None)
@given(VIDEO | JSONISH, st.booleans())
def test_video_json_parser(value, fits):
    """Both ways a model takes sizes: its own only, or any within the bounds (fitted)."""
    try:
        req = parse_create(b"application/json", _body(value), fits=fits)
    except ApiError as e:
        _client_error(e)
        return
    if fits:
        assert video_fit.bounds_problem(req.width, req.height) is None and 1 <= int(req.seconds) <= 60


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_parsers_take_any_bytes(raw):
    for parse in (chat_request, embeddings_request, lambda b: parse_create(b"application/json", b)):
        try:
            parse(raw)
        except ApiError as e:
            _client_error(e)


# --- the real app over loopback HTTP, fewer examples ----------------------------------------

@pytest.fixture(scope="module")
def gateway(loop):
    from tests.harness import Gateway
    cfg = base_config([{"name": "mock", "type": "mock"}, mock_video("mockv")],
                      [chat_model("chat", {"provider": "mock"}),
                       {"name": "embed", "kind": "embedding", "route": {"targets": [{"provider": "mock"}]}},
                       video_model("mock-video", "mockv"),
                       {"name": "mock-image", "kind": "image", "route": {"targets": [{"provider": "mock"}]}},
                       {"name": "mock-tts", "kind": "speech", "route": {"targets": [{"provider": "mock"}]}},
                       {"name": "mock-stt", "kind": "transcription", "route": {"targets": [{"provider": "mock"}]}}])
    gw = Gateway(loop, cfg)
    yield gw
    gw.close()


@pytest.fixture(scope="module")
def http(gateway):
    with gateway.http() as client:
        yield client


def _openai_shaped(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


_LOOPBACK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# The article's video body, images and speech: their fields, any JSON in them, small sizes
# (so what is valid is made quickly)
_SMALL = st.sampled_from(["64x64", "32x48", "auto", "1x1", "4096x4096x", "99999x99999"])
IMAGES = _with_fields(st.fixed_dictionaries({}, optional={"prompt": _TEXT | JSONISH, "model": st.just("mock-image")}),
                      {f: JSONISH | _TEXT for f in ["n", "quality", "response_format", "background", "output_format",
                                                    "output_compression", "style", "stream"]} | {"size": _SMALL})
SPEECH = _with_fields(st.fixed_dictionaries({}, optional={"input": _TEXT | JSONISH, "model": st.just("mock-tts")}),
                      {f: JSONISH | _TEXT for f in ["voice", "response_format", "speed", "instructions",
                                                    "stream_format"]})


@_LOOPBACK
@given(st.tuples(st.just("/v1/chat/completions"), CHAT) | st.tuples(st.just("/v1/embeddings"), EMBEDDINGS)
       | st.tuples(st.just("/v1/videos"), VIDEO) | st.tuples(st.just("/v1/chat/completions"), JSONISH)
       | st.tuples(st.just("/v1/video/generations"), VIDEO) | st.tuples(st.just("/v1/images/generations"), IMAGES)
       | st.tuples(st.just("/v1/audio/speech"), SPEECH))
def test_random_bodies_over_http(http, sent):
    path, value = sent
    _openai_shaped(http.post(path, content=_body(value), headers={"content-type": "application/json"}))


@_LOOPBACK
@given(st.sampled_from(["/v1/images/edits", "/v1/audio/transcriptions", "/v1/audio/translations"]),
       st.lists(st.tuples(st.sampled_from(["image", "image[]", "mask", "file", "prompt", "model", "n", "size",
                                           "response_format", "language", "temperature"]),
                          st.binary(max_size=32) | st.sampled_from([b"mock-image", b"mock-stt", b"2", b"64x64"]),
                          st.booleans()), max_size=6))
def test_random_forms_over_http(http, path, parts):
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
                    % (name.encode(), b'; filename="f"' if is_file else b"", data)
                    for name, data, is_file in parts) + b"--b--\r\n"
    _openai_shaped(http.post(path, content=body, headers={"content-type": "multipart/form-data; boundary=b"}))


_QUERY_VALUE = st.text(max_size=8) | st.integers(-10, 200).map(str) | st.sampled_from(["²", "١٢", "５", "é", ""])


@_LOOPBACK
@given(st.dictionaries(st.sampled_from(["limit", "order", "after", "variant", "signature", "expires", "x"]),
                       _QUERY_VALUE, max_size=4),
       st.sampled_from(["/v1/videos", "/v1/videos/video_x/content", "/v1/videos/vidé/content", "/v1/videos/video_x"]))
def test_random_query_strings_over_http(http, params, path):
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    _openai_shaped(http.get(f"{path}?{query}"))
