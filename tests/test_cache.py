"""The exact-match response cache: opt-in per model, per key unless shared."""
from __future__ import annotations

import pytest

from tests.harness import base_config, chat_model

MSG = [{"role": "user", "content": "cache me"}]


@pytest.fixture
def gw(start_gateway, fake_openai, tmp_path):
    fake = fake_openai()
    cfg = base_config([{"name": "up", "type": "openai_compatible", "base_url": fake.url}],
                      [chat_model("cached", {"provider": "up", "model": "gpt-4o-mini"}, cache={"ttl_s": 60}),
                       chat_model("shared", {"provider": "up"}, cache={"ttl_s": 60, "shared": True}),
                       chat_model("short", {"provider": "up"}, cache={"ttl_s": 0.3}),
                       chat_model("plain", {"provider": "up"}),
                       {"name": "emb", "kind": "embedding", "route": {"targets": [{"provider": "up"}]},
                        "cache": {"ttl_s": 60}}],
                      prices={"up/*": {"input_per_mtok": 1, "output_per_mtok": 1}},
                      state={"data_dir": str(tmp_path)})
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other"})
    cfg["auth"]["admin_key"] = "sk-admin"
    return start_gateway(cfg), fake


def ask(gw, model="cached", key="sk-test", **kw):
    return gw.client(key).chat.completions.with_raw_response.create(model=model, messages=MSG, **kw)


def test_second_identical_request_is_a_hit(gw):
    g, fake = gw
    first, second = ask(g), ask(g)
    assert first.headers["x-gateway-cache"] == "miss" and second.headers["x-gateway-cache"] == "hit"
    assert second.http_response.content == first.http_response.content
    assert second.headers["x-gateway-cost-usd"] == "0" and second.headers["x-gateway-provider"] == "up"
    assert len(fake.seen) == 1
    assert ask(g, temperature=0.1).headers["x-gateway-cache"] == "miss"     # a different request
    row = g.http("sk-admin").get("/admin/spend", params={"model": "cached"}).json()["data"][0]
    assert (row["requests"], row["cache_hits"]) == (3, 1)


def test_keys_do_not_share_unless_configured(gw):
    g, fake = gw
    ask(g)
    assert ask(g, key="sk-other").headers["x-gateway-cache"] == "miss"
    ask(g, model="shared")
    assert ask(g, model="shared", key="sk-other").headers["x-gateway-cache"] == "hit"


def test_cache_control_from_the_client(gw):
    g, fake = gw
    ask(g)
    assert ask(g, extra_headers={"cache-control": "no-cache"}).headers["x-gateway-cache"] == "miss"
    assert ask(g, model="shared", extra_headers={"cache-control": "no-store"}).headers["x-gateway-cache"] == "miss"
    assert ask(g, model="shared").headers["x-gateway-cache"] == "miss"       # no-store stored nothing


def test_entries_expire(gw):
    import time
    g, fake = gw
    ask(g, model="short")
    assert ask(g, model="short").headers["x-gateway-cache"] == "hit"
    time.sleep(0.4)
    assert ask(g, model="short").headers["x-gateway-cache"] == "miss"


def test_stream_replayed_from_a_cached_answer(gw):
    g, fake = gw
    whole = ask(g).parse()
    with g.client().chat.completions.with_streaming_response.create(
            model="cached", messages=MSG, stream=True, stream_options={"include_usage": True}) as r:
        assert r.headers["x-gateway-cache"] == "hit"
        chunks = list(r.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens
    assert len(fake.seen) == 1


def test_models_without_cache_say_nothing(gw):
    g, _ = gw
    assert "x-gateway-cache" not in ask(g, model="plain").headers


def test_embeddings_cached(gw):
    g, fake = gw
    a = g.client().embeddings.with_raw_response.create(model="emb", input="x", encoding_format="float")
    b = g.client().embeddings.with_raw_response.create(model="emb", input="x", encoding_format="float")
    assert (a.headers["x-gateway-cache"], b.headers["x-gateway-cache"]) == ("miss", "hit")
    assert b.parse().data[0].embedding == a.parse().data[0].embedding
