"""Bad input of every kind gets a clear OpenAI-shaped 4xx, and nothing is sent upstream."""
from __future__ import annotations

import socket

import httpx
import pytest

from tests.harness import base_config, chat_model


@pytest.fixture
def setup(start_gateway, fake_openai):
    fake = fake_openai()
    gw = start_gateway(base_config(
        [{"name": "up", "type": "openai_compatible", "base_url": fake.url},
         {"name": "mock", "type": "mock"}],
        [chat_model("chat", {"provider": "up"}),
         {"name": "embed", "kind": "embedding", "route": {"targets": [{"provider": "up"}]}}],
        server={"max_body_mb": 0.01}))
    return gw, fake


def assert_error(r: httpx.Response, status: int, param=None, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and isinstance(body["error"]["type"], str)
    assert "Traceback" not in r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"]
    if param is not None:
        assert body["error"]["param"] == param
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


GOOD = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

CHAT_CASES = [
    (b"{not json", None),
    (b"", None),
    (b"[1, 2]", None),
    (b'"just a string"', None),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model"),
    (b'{"model": "", "messages": []}', "model"),
    (b'{"model": "chat"}', "messages"),
    (b'{"model": "chat", "messages": []}', "messages"),
    (b'{"model": "chat", "messages": "hello"}', "messages"),
    (b'{"model": "chat", "messages": ["hello"]}', "messages[0]"),
    (b'{"model": "chat", "messages": [{"content": "no role"}]}', "messages[0]"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}', "stream"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "n": "two"}', "n"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "n": 0}', "n"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": -5}', "max_tokens"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}', "max_tokens"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}', "temperature"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "temperature": 9}', "temperature"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "tools": {"a": 1}}', "tools"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "response_format": "json"}',
     "response_format"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], '
     b'"stream_options": {"include_usage": true}}', "stream_options"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "x"}], "stream": true, "stream_options": 1}',
     "stream_options"),
    (b'{"model": "chat", "messages": [{"role": "user", "content": "\xff\xfe"}]}', None),
]


@pytest.mark.parametrize("body,param", CHAT_CASES)
def test_bad_chat_bodies_are_400(setup, body, param):
    gw, fake = setup
    r = gw.http().post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    err = assert_error(r, 400, param=param)
    assert err["type"] == "invalid_request_error"
    assert fake.seen == []


@pytest.mark.parametrize("body,param", [
    ({"model": "embed"}, "input"), ({"model": "embed", "input": ""}, "input"),
    ({"model": "embed", "input": []}, "input"),
    ({"model": "embed", "input": [1, "a"]}, "input"), ({"model": "embed", "input": {"a": 1}}, "input"),
    ({"model": "embed", "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ({"model": "embed", "input": "x", "dimensions": "8"}, "dimensions"),
])
def test_bad_embedding_bodies_are_400(setup, body, param):
    gw, fake = setup
    assert_error(gw.http().post("/v1/embeddings", json=body), 400, param=param)
    assert fake.seen == []


def test_unknown_model_is_404(setup):
    gw, fake = setup
    assert_error(gw.http().post("/v1/chat/completions", json={**GOOD, "model": "gpt-nope"}), 404,
                 param="model", code="model_not_found")
    assert_error(gw.http().post("/v1/chat/completions", json={**GOOD, "model": "nosuchprovider/x"}), 404,
                 code="model_not_found")
    assert fake.seen == []


def test_model_of_the_wrong_kind(setup):
    gw, fake = setup
    err = assert_error(gw.http().post("/v1/chat/completions", json={**GOOD, "model": "embed"}), 404,
                       code="model_not_supported")
    assert "/v1/embeddings" in err["message"]
    assert_error(gw.http().post("/v1/embeddings", json={"model": "chat", "input": "x"}), 404)
    assert fake.seen == []


def test_body_over_the_limit_is_413(setup):
    gw, fake = setup
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 20_000}]}
    assert_error(gw.http().post("/v1/chat/completions", json=big), 413, code="request_too_large")

    def chunked():          # no content-length: the limit applies while reading
        yield b'{"model": "chat", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 1000
        yield b'"}]}'
    assert_error(gw.http().post("/v1/chat/completions", content=chunked()), 413)
    assert fake.seen == []


def test_lying_content_length_is_refused_early(setup):
    gw, fake = setup
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-test\r\n"
                  b"content-type: application/json\r\ncontent-length: 999999999\r\n\r\n{")
        head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 413")
    assert fake.seen == []


def test_unknown_path_404_and_wrong_method_405(setup):
    gw, _ = setup
    http = gw.http()
    err = assert_error(http.get("/v1/nothing-here"), 404, code="unknown_url")
    assert "/v1/nothing-here" in err["message"]
    r = http.get("/v1/chat/completions")
    assert_error(r, 405, code="method_not_allowed")
    assert r.headers["allow"] == "POST"
    assert_error(http.delete("/v1/models"), 405)
    assert_error(http.post("/healthz"), 405)


def test_client_gone_mid_body_is_harmless(setup):
    gw, fake = setup
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-test\r\n"
                  b"content-length: 500\r\n\r\n{\"model\"")
    r = gw.http().post("/v1/chat/completions", json=GOOD)   # the gateway carries on
    assert r.status_code == 200
    assert len(fake.seen) == 1
