"""Chat and embeddings through the gateway, with the official openai SDK."""
from __future__ import annotations

import time

import orjson
import pytest

from tests.harness import base_config, chat_model
from tests.upstreams.openai_fake import recorded


def openai_upstream(fake, name="up", **extra):
    return {"name": name, "type": "openai_compatible", "base_url": fake.url, "api_key": "sk-upstream-secret", **extra}


@pytest.fixture
def setup(start_gateway, fake_openai):
    fake = fake_openai()
    gw = start_gateway(base_config(
        [openai_upstream(fake), {"name": "mock", "type": "mock"}],
        [chat_model("chat", {"provider": "up", "model": "gpt-4o-mini"}),
         chat_model("mock-chat", {"provider": "mock"}),
         {"name": "embed", "kind": "embedding",
          "route": {"targets": [{"provider": "up", "model": "text-embedding-3-small"}]}},
         {"name": "mock-embed", "kind": "embedding", "route": {"targets": [{"provider": "mock"}]}}]))
    return gw, fake


def test_json_answer_passes_through_untouched(setup):
    gw, fake = setup
    raw = gw.client().chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Hello"}])
    assert raw.http_response.content == recorded("chat_completion.json")
    done = raw.parse()
    assert done.choices[0].message.content.startswith("Hello! How can I assist")
    assert done.usage.total_tokens == 29
    assert raw.headers["x-gateway-provider"] == "up"
    assert raw.headers["x-gateway-attempts"] == "1"
    assert float(raw.headers["x-gateway-overhead-ms"]) >= 0
    assert raw.headers["x-request-id"].startswith("req_")


def test_body_forwarded_with_only_model_rewritten(setup):
    gw, fake = setup
    params = dict(messages=[{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Weather in Paris? é 🚀"}],
                  tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
                      "type": "object", "properties": {"model": {"type": "string"}}}}}],
                  tool_choice="auto", n=2, seed=7, temperature=0.2,
                  response_format={"type": "json_object"}, metadata={"model": "chat"})
    gw.client().chat.completions.create(model="chat", **params)
    sent = fake.seen[-1]
    assert sent.json == {"model": "gpt-4o-mini", **params}
    # The upstream's key is the provider's, never the client's.
    assert sent.headers["Authorization"] == "Bearer sk-upstream-secret"


def test_model_splice_keeps_every_other_byte(setup):
    gw, fake = setup
    body = b'{"messages": [{"role": "user", "content": "x"}],   "model" :  "chat", "n": 1}'
    r = gw.http().post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200
    assert fake.seen[-1].body == body.replace(b'"chat"', b'"gpt-4o-mini"')


def test_stream_relays_events_and_usage(setup):
    gw, fake = setup
    stream = gw.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, friend é 🚀"
    assert chunks[-1].usage.total_tokens == 13
    assert fake.seen[-1].json["stream_options"] == {"include_usage": True}


def test_stream_bytes_are_the_upstreams(setup):
    gw, fake = setup
    with gw.http().stream("POST", "/v1/chat/completions", json={
            "model": "chat", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-gateway-provider"] == "up"
        body = r.read()
    assert body == recorded("chat_stream.sse")


def test_tool_calls_answer(setup):
    gw, fake = setup
    fake.chat_body = recorded("chat_tool_call.json")
    done = gw.client().chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}])
    calls = done.choices[0].message.tool_calls
    assert [c.id for c in calls] == ["call_abc123", "call_def456"]
    assert done.choices[0].finish_reason == "tool_calls"


def test_embeddings_pass_through(setup):
    gw, fake = setup
    e = gw.client().embeddings.create(model="embed", input="hello world", encoding_format="float")
    assert e.data[0].embedding == [0.0023064255, -0.009327292, -0.0028842222]
    assert fake.seen[-1].path == "/v1/embeddings"
    assert fake.seen[-1].json["model"] == "text-embedding-3-small"


def test_mock_chat_is_deterministic_and_counts_usage(setup):
    gw, _ = setup
    c = gw.client()
    a = c.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "same words"}])
    b = c.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "same words"}])
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage.completion_tokens == 16 and a.usage.prompt_tokens == 6
    assert a.model == "mock-chat"


def test_mock_honours_n_max_tokens_json_and_tools(setup):
    gw, _ = setup
    c = gw.client()
    many = c.chat.completions.create(model="mock-chat", n=3, max_tokens=4,
                                     messages=[{"role": "user", "content": "x"}])
    assert [ch.index for ch in many.choices] == [0, 1, 2]
    assert all(len(ch.message.content.split()) == 4 and ch.finish_reason == "length" for ch in many.choices)
    as_json = c.chat.completions.create(model="mock-chat", response_format={"type": "json_object"},
                                        messages=[{"role": "user", "content": "x"}])
    assert orjson.loads(as_json.choices[0].message.content)["mock"] is True
    tool = c.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "weather?"}],
                                     tools=[{"type": "function", "function": {"name": "weather", "parameters": {
                                         "type": "object", "properties": {"city": {"type": "string"}}}}}])
    call = tool.choices[0].message.tool_calls[0]
    assert call.function.name == "weather" and orjson.loads(call.function.arguments) == {"city": "mock"}


def test_mock_stream_with_usage(setup):
    gw, _ = setup
    chunks = list(gw.client().chat.completions.create(
        model="mock-chat", messages=[{"role": "user", "content": "hello"}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = gw.client().chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "hello"}])
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == 16


def test_mock_embeddings_float_and_base64(setup):
    gw, _ = setup
    c = gw.client()
    e = c.embeddings.create(model="mock-embed", input=["a", "b"])   # the SDK asks for base64
    f = c.embeddings.create(model="mock-embed", input=["a", "b"], encoding_format="float")
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8
    assert e.data[0].embedding == pytest.approx(f.data[0].embedding, rel=1e-6)
    assert e.data[0].embedding != e.data[1].embedding


def test_models_list_and_retrieve(setup):
    gw, _ = setup
    c = gw.client()
    assert sorted(m.id for m in c.models.list()) == ["chat", "embed", "mock-chat", "mock-embed"]
    assert c.models.retrieve("chat").id == "chat"
    with pytest.raises(Exception) as e:
        c.models.retrieve("nope")
    assert e.value.status_code == 404


def test_direct_provider_model_name(setup):
    gw, fake = setup
    done = gw.client().chat.completions.create(model="up/gpt-4.1-nano", messages=[{"role": "user", "content": "x"}])
    assert done.id.startswith("chatcmpl-")
    assert fake.seen[-1].json["model"] == "gpt-4.1-nano"


def test_request_id_kept_or_made(setup):
    gw, _ = setup
    http = gw.http()
    mine = http.post("/v1/chat/completions", headers={"x-request-id": "trace-123"},
                     json={"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]})
    assert mine.headers["x-request-id"] == "trace-123"
    a = http.get("/healthz").headers["x-request-id"]
    time.sleep(0.002)
    b = http.get("/nope").headers["x-request-id"]
    assert a != b and a.startswith("req_")
    time.sleep(0.002)
    c = http.get("/healthz").headers["x-request-id"]
    # made ids grow with time (the request log's index on them takes them at its end), and stay unique
    assert a < b < c and len({a, b, c}) == 3 and all(len(i) == len("req_") + 28 for i in (a, b, c))


def test_health_and_ready(setup):
    gw, _ = setup
    http = gw.http(key=None)
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_paths_without_v1_prefix(setup):
    gw, _ = setup
    r = gw.http().post("/chat/completions", json={"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200


def test_openai_streams_are_charged_without_showing_the_usage_chunk(start_gateway, fake_openai, tmp_path):
    fake = fake_openai()
    cfg = base_config([{"name": "oa", "type": "openai", "base_url": fake.url, "api_key": "sk-up"}],
                      [chat_model("m", {"provider": "oa", "model": "gpt-4o-mini"})],
                      prices={"oa/gpt-4o-mini": {"input_per_mtok": 1, "output_per_mtok": 1}})
    cfg["auth"]["admin_key"] = "sk-admin"
    gw = start_gateway(cfg)
    chunks = list(gw.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}],
                                                       stream=True))
    assert fake.seen[-1].json["stream_options"] == {"include_usage": True}    # the gateway asked for it
    assert all(c.choices for c in chunks)                                   # ... and kept it to itself
    row = gw.http("sk-admin").get("/admin/spend").json()["data"][0]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 4)
    # A client that asks gets it, once.
    chunks = list(gw.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}],
                                                       stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.total_tokens == 13 and sum(1 for c in chunks if c.usage) == 1
