"""A stream is relayed the same whether its upstream wrote it all at once (a
short answer from a fast server: the gateway sends it with one message, head,
events and end) or over time (relayed as it arrives): the same bytes to the
client, the usage chunk it did not ask for left out, the provider's secret
hidden, and the same charge, from the upstream's usage or, without one, from
the events relayed."""
from __future__ import annotations

import pytest

from tests.harness import base_config, chat_model
from tests.upstreams.openai_fake import recorded

STREAM = recorded("chat_stream.sse")
USAGE_EVENT = next(e + b"\n\n" for e in STREAM.split(b"\n\n") if b'"usage":{' in e)
MSG = [{"role": "user", "content": "Hi"}]
HOW = {"in one write": {"stream_in_one_write": True}, "over time": {"chunk_delay_s": 0.05}}


@pytest.fixture(params=list(HOW))
def setup(request, start_gateway, fake_openai):
    fake = fake_openai()
    fake.ok(**HOW[request.param])
    cfg = base_config([{"name": "oa", "type": "openai", "base_url": fake.url, "api_key": "sk-up-secret-1234567"}],
                      [chat_model("m", {"provider": "oa", "model": "gpt-4o-mini"})],
                      prices={"oa/gpt-4o-mini": {"input_per_mtok": 1, "output_per_mtok": 1}})
    cfg["auth"]["admin_key"] = "sk-admin"
    return start_gateway(cfg), fake


def _spent(gw) -> tuple[int, int]:
    row = gw.http("sk-admin").get("/admin/spend").json()["data"][0]
    return row["prompt_tokens"], row["completion_tokens"]


def test_the_client_gets_the_upstreams_events_without_the_usage_it_did_not_ask_for(setup):
    gw, fake = setup
    with gw.http().stream("POST", "/v1/chat/completions", json={"model": "m", "stream": True, "messages": MSG}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers.get("transfer-encoding") == "chunked"
        body = r.read()
    assert body == STREAM.replace(USAGE_EVENT, b"")
    assert _spent(gw) == (9, 4)


def test_a_client_that_asks_for_usage_gets_every_event_once(setup):
    gw, _ = setup
    chunks = list(gw.client().chat.completions.create(model="m", messages=MSG, stream=True,
                                                       stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello there, friend é 🚀"
    assert chunks[-1].usage.total_tokens == 13 and sum(1 for c in chunks if c.usage) == 1


def test_a_stream_without_usage_is_charged_by_the_events_relayed(setup):
    gw, fake = setup
    fake.stream_body = STREAM.replace(USAGE_EVENT, b"")
    with gw.http().stream("POST", "/v1/chat/completions", json={"model": "m", "stream": True, "messages": MSG}) as r:
        body = r.read()
    assert body == fake.stream_body
    prompt, completion = _spent(gw)
    assert prompt > 0 and completion == body.count(b"data:") - 2


def test_the_providers_secret_is_hidden_in_what_the_stream_relays(setup):
    gw, fake = setup
    fake.stream_body = STREAM.replace(b"Hello", b"sk-up-secret-1234567", 1)
    with gw.http().stream("POST", "/v1/chat/completions", json={"model": "m", "stream": True, "messages": MSG}) as r:
        body = r.read()
    assert b"sk-up-secret-1234567" not in body
    assert body == fake.stream_body.replace(b"sk-up-secret-1234567", b"***").replace(USAGE_EVENT, b"")
