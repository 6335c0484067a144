"""Hostile client input never reaches an unhandled exception: Unicode digits
and non-ASCII signatures in video query strings, malformed optional fields the
mock provider reads, and bodies whose "model" key is escaped, nested or
duplicated (only the real top-level key is ever rewritten upstream)."""
from __future__ import annotations

import json
import time

import orjson
import pytest

from gateway.video import links
from providers.mock.answers import ChatAnswer, embedding_answer
from providers.openai.chat import with_model, with_usage_requested
from tests.harness import base_config, chat_model
from tests.test_bad_input import assert_error
from tests.video.conftest import video_config

# --- video links and query parameters ----------------------------------------------------

SECRET = b"s" * 32


@pytest.mark.parametrize("expires", ["١٢٣٤٥٦٧٨٩٠", "²", "9²", " 99999999999", "+99999999999", "99_999_999_999",
                                     "9" * 5000, "", "-1", "1e12", "\x00"])
def test_a_link_with_a_strange_expiry_is_refused(expires):
    assert links.verify(SECRET, "video_1", "video", expires, "0" * 64) is False


@pytest.mark.parametrize("signature", ["é", "é" * 64, "\udcc3", "\x00" * 64, "0" * 10_000, "ß" * 32])
def test_a_non_ascii_signature_is_refused_not_raised(signature):
    expires = str(int(time.time()) + 60)
    assert links.verify(SECRET, "video_1", "video", expires, signature) is False


def test_a_good_link_still_verifies():
    url = links.signed_url("http://gw", SECRET, "video_1", ttl_s=60)
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    assert links.verify(SECRET, "video_1", "video", query["expires"], query["signature"])


@pytest.fixture
def video_gateway(start_gateway):
    return start_gateway(video_config())


@pytest.mark.parametrize("query", ["signature=%C3%A9", "signature=%C3%A9&expires=99999999999",
                                   "signature=%FF%FE&expires=%C2%B2", "signature=x&expires=",
                                   "signature=abc&expires=%D9%A1%D9%A2", "variant=video&signature=%00%00"])
def test_content_with_a_hostile_signature_is_403(video_gateway, query):
    with video_gateway.http(key=None) as http:
        r = http.get(f"/v1/videos/video_x/content?{query}")
    assert_error(r, 403, code="invalid_signature")


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A1", "%EF%BC%95", "1_0", "+5", "%205", "0", "101", "9" * 400, "-1",
                                   "5.0", "%00", "%E2%80%8B5"])
def test_list_with_a_strange_limit_is_400(video_gateway, limit):
    with video_gateway.http() as http:
        r = http.get(f"/v1/videos?limit={limit}")
    assert_error(r, 400, param="limit")


def test_list_with_a_good_limit_still_works(video_gateway):
    with video_gateway.http() as http:
        assert http.get("/v1/videos?limit=100&order=asc").json()["object"] == "list"


# --- the mock provider reads malformed optional fields without failing --------------------

USER = [{"role": "user", "content": "hi"}]
MALFORMED = [
    {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}, {"type": "text", "text": None}]}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": ["a"]}, "part", 3]}]},
    {"messages": USER, "tools": [{"type": "function", "function": "get_weather"}]},
    {"messages": USER, "tools": [{"type": "function", "function": None}], "tool_choice": "required"},
    {"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}],
     "tool_choice": {"type": "function", "function": "f"}},
    {"messages": USER, "tools": [{"type": "function", "function": {"name": "f"}}],
     "tool_choice": {"type": "function", "function": {"name": ["f"]}}},
    {"messages": USER, "tools": [{"type": "function", "function": {"name": 7, "parameters": "x"}}],
     "tool_choice": "required"},
    {"messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": [1]}}}],
     "tool_choice": "required"},
    {"messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "properties": {"a": {"enum": {"x": 1}}, "b": {"enum": "xy"}, "c": {"type": ["string"]}}}}}],
     "tool_choice": "required"},
    {"messages": USER, "tools": ["not a tool", 3, None]},
    {"messages": USER, "response_format": {"type": ["json_object"]}},
]


@pytest.mark.parametrize("extra", MALFORMED)
def test_the_mock_ignores_malformed_optional_fields(start_gateway, extra):
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}], [chat_model("chat", {"provider": "mock"})]))
    with gw.http() as http:
        for stream in (False, True):
            r = http.post("/v1/chat/completions", json={"model": "chat", "stream": stream, **extra})
            assert r.status_code == 200, r.text


@pytest.mark.parametrize("data", [
    {"messages": "x", "n": "3", "max_tokens": "9"}, {"messages": [None, 3, {"content": {"x": 1}}]},
    {"messages": USER, "n": True, "stream_options": "yes"}, {"messages": USER, "tools": {"a": 1}, "tool_choice": 3},
])
def test_the_mock_answer_builder_takes_any_dict(data):
    answer = ChatAnswer(data, "m", 8, "req")
    orjson.loads(answer.body())
    assert list(answer.events(3))[-1] == b"data: [DONE]\n\n"


@pytest.mark.parametrize("data", [{"input": None}, {"input": [None, 1.5]}, {"input": "x", "dimensions": "9"},
                                  {"input": "x", "dimensions": True}, {"input": "x", "dimensions": -4}])
def test_the_mock_embeddings_take_any_dict(data):
    body, _ = embedding_answer(data, "m", 8)
    assert orjson.loads(body)["object"] == "list"


# --- only the real top-level "model" is ever rewritten ---------------------------------------

def _sent(body: bytes, model: str = "upstream-model") -> dict:
    data = orjson.loads(body)
    out = with_model(body, data, model)
    return orjson.loads(out)


@pytest.mark.parametrize("body", [
    rb'{"model":"public","messages":[]}',
    rb'{ "model" :  "public" , "messages":[]}',
    b'{\n\t"model"\n:\n"public"}',
    rb'{"messages":[{"role":"user","content":"say \"model\""}],"model":"public"}',
    rb'{"mod\u0065l":"public","messages":[]}',
    rb'{"\u006d\u006f\u0064\u0065\u006c":"public"}',
    rb'{"model":"public","metadata":{"model":"keep-me"}}',
    rb'{"metadata":{"model":"keep-me"},"mod\u0065l":"public"}',
    rb'{"model":"upstream-model","model":"public"}',
    rb'{"model":"public","model":"public"}',
    rb'{"model":"public","mod\u0065l":"public"}',
    rb'{"model":"p\u0075blic","metadata":{"model":"keep-me"}}',
    rb'{"tools":[{"function":{"parameters":{"properties":{"model":{"type":"string"}}}}}],"model":"public"}',
])
def test_only_the_top_level_model_is_rewritten(body):
    data = orjson.loads(body)
    out = with_model(body, data, "upstream-model")
    sent = orjson.loads(out)
    assert sent["model"] == "upstream-model"
    assert {k: v for k, v in sent.items() if k != "model"} == {k: v for k, v in data.items() if k != "model"}
    # one key that reads "model", whichever duplicate an upstream's parser would keep
    assert _top_keys(out).count("model") == 1


def _top_keys(body: bytes) -> list[str]:
    """The top-level keys as written, duplicates kept (orjson keeps one); escapes decoded."""
    last: list[str] = []

    def pairs(items: list) -> dict:
        last[:] = [k for k, _ in items]     # the top-level object is the last one closed
        return dict(items)
    json.loads(body, object_pairs_hook=pairs)
    return last


def test_a_plain_body_is_spliced_not_re_encoded():
    body = b'{"model": "public",  "messages": [{"role":"user","content":"a\\nb"}], "temperature": 1.0}'
    out = with_model(body, orjson.loads(body), "upstream-model")
    assert out == body.replace(b'"public"', b'"upstream-model"')      # the client's bytes, spacing and all


def test_a_duplicate_key_is_never_passed_on_even_when_the_model_matches():
    body = b'{"model":"gpt-secret","model":"public"}'
    out = with_model(body, orjson.loads(body), "public")
    assert out == b'{"model":"public"}'


def test_the_usage_request_is_not_spliced_next_to_a_null_one():
    body = b'{"model":"m","stream":true,"stream_options":null}'
    out = with_usage_requested(body, orjson.loads(body), "m")
    assert orjson.loads(out)["stream_options"] == {"include_usage": True} and out.count(b"stream_options") == 1


def test_the_upstream_receives_the_target_model_through_the_gateway(start_gateway, fake_openai):
    fake = fake_openai()
    gw = start_gateway(base_config([{"name": "up", "type": "openai_compatible", "base_url": fake.url}],
                                   [chat_model("public", {"provider": "up", "model": "real-model"})]))
    with gw.http() as http:
        for body in [rb'{"mod\u0065l":"public","messages":[{"role":"user","content":"x"}],'
                     rb'"metadata":{"model":"keep"}}',
                     rb'{"model":"public","messages":[{"role":"user","content":"x"}],"metadata":{"model":"keep"}}',
                     rb'{"model" : "public" ,"messages":[{"role":"user","content":"x"}]}']:
            r = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
            sent = fake.seen[-1]
            assert sent.json["model"] == "real-model"
            assert _top_keys(sent.body).count("model") == 1
            if b"metadata" in body:
                assert sent.json["metadata"] == {"model": "keep"}
