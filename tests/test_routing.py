"""Strategies, nested routes and rules, observed from the client side."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.harness import base_config, chat_model

MSG = [{"role": "user", "content": "hi"}]


def mocks(*names, **knobs):
    return [{"name": n, "type": "mock", **knobs.get(n, {})} for n in names]


def served_by(gw, model, n=1, key="sk-test"):
    c = gw.client(key)
    return Counter(c.chat.completions.with_raw_response.create(model=model, messages=MSG)
                   .headers["x-gateway-provider"] for _ in range(n))


def test_fallback_uses_the_first_healthy(start_gateway):
    gw = start_gateway(base_config(mocks("a", "b"), [chat_model("m", {"provider": "a"}, {"provider": "b"})]))
    assert served_by(gw, "m", 5) == {"a": 5}


def test_weighted_follows_weights(start_gateway):
    gw = start_gateway(base_config(mocks("a", "b"), [chat_model(
        "m", {"provider": "a", "weight": 3}, {"provider": "b", "weight": 1}, strategy="weighted")]))
    counts = served_by(gw, "m", 400)
    assert 0.65 < counts["a"] / 400 < 0.85     # 0.75 expected; bounds are ~5 sigma


def test_least_latency_prefers_the_faster(start_gateway):
    gw = start_gateway(base_config(mocks("slow", "fast", slow={"latency_ms": 40}),
                                   [chat_model("m", {"provider": "slow"}, {"provider": "fast"},
                                               strategy="least_latency")]))
    counts = served_by(gw, "m", 12)
    assert counts["slow"] <= 2 and counts["fast"] >= 10   # each is measured, then the fast one wins


def test_least_cost_picks_the_cheapest_priced(start_gateway):
    gw = start_gateway(base_config(
        mocks("pricey", "cheap", "middle"),
        [chat_model("m", {"provider": "middle"}, {"provider": "pricey"}, {"provider": "cheap"}, strategy="least_cost")],
        prices={"pricey/*": {"input_per_mtok": 5, "output_per_mtok": 15},
                "middle/*": {"input_per_mtok": 1, "output_per_mtok": 1},
                "cheap/m": {"input_per_mtok": 0.1, "output_per_mtok": 0.4}}))
    assert served_by(gw, "m", 3) == {"cheap": 3}


def test_unpriced_targets_sort_last_and_prices_match_by_name_then_type():
    from gateway.config.schema import Price
    from gateway.prices import Prices
    from gateway.routes import ORDER
    prices = Prices({"anthropic/claude-haiku-4-5*": Price(input_per_mtok=1),
                     "team-claude/claude-haiku-4-5": Price(input_per_mtok=2),
                     "x/*": Price(input_per_mtok=3), "x/special-*": Price(input_per_mtok=4)})
    assert prices.get("team-claude", "claude-haiku-4-5", "anthropic").input_per_mtok == 2
    assert prices.get("other-claude", "claude-haiku-4-5-20251001", "anthropic").input_per_mtok == 1
    assert prices.get("x", "special-one").input_per_mtok == 4       # the longer glob wins
    assert prices.get("nobody", "m", "mock") is None

    class T:
        def __init__(self, cost):
            self.cost = cost
    a, b, c = T(float("inf")), T(2.0), T(0.5)
    assert ORDER["least_cost"]([a, b, c]) == [c, b, a]


def test_least_busy_avoids_the_loaded_target(start_gateway, loop):
    import asyncio

    import openai
    gw = start_gateway(base_config(mocks("a", "b", a={"latency_ms": 300}, b={"latency_ms": 300}),
                                   [chat_model("m", {"provider": "a"}, {"provider": "b"}, strategy="least_busy")]))

    async def burst():
        c = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="sk-test", max_retries=0)
        rs = await asyncio.gather(*(c.chat.completions.with_raw_response.create(model="m", messages=MSG)
                                    for _ in range(6)))
        await c.close()
        return Counter(r.headers["x-gateway-provider"] for r in rs)

    assert loop.run(burst()) == {"a": 3, "b": 3}


def test_nested_route_is_tried_in_place(start_gateway):
    gw = start_gateway(base_config(
        mocks("primary", "x", "y", primary={"fail_rate": 1.0}),
        [chat_model("m", {"provider": "primary"},
                    {"strategy": "weighted",
                     "targets": [{"provider": "x", "weight": 1}, {"provider": "y", "weight": 1}]})]))
    counts = served_by(gw, "m", 60)
    assert set(counts) == {"x", "y"} and min(counts.values()) > 10


def test_nested_failover_inside_then_out(start_gateway):
    gw = start_gateway(base_config(
        mocks("x", "y", "z", x={"fail_rate": 1.0}, y={"fail_rate": 1.0}),
        [chat_model("m", {"strategy": "fallback", "targets": [{"provider": "x"}, {"provider": "y"}]},
                    {"provider": "z"}, retries=2)]))
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "z" and raw.headers["x-gateway-attempts"] == "3"


def test_rules_rewrite_model_for_matching_key(start_gateway):
    cfg = base_config(mocks("a", "b"), [chat_model("fast-chat", {"provider": "a"}),
                                         chat_model("other", {"provider": "b"})],
                      rules=[{"match": {"key": "demo", "model": "gpt-*"}, "model": "fast-chat"},
                             {"match": {"model": "gpt-*"}, "model": "other"}])
    cfg["auth"]["keys"].append({"name": "demo", "key": "sk-demo", "models": ["fast-chat"]})
    gw = start_gateway(cfg)
    assert served_by(gw, "gpt-4o", key="sk-demo") == {"a": 1}
    assert served_by(gw, "gpt-4o") == {"b": 1}        # key `test` falls to the second rule
    done = gw.client("sk-demo").chat.completions.create(model="gpt-4o", messages=MSG)
    assert done.choices[0].message.content


def test_rules_rewrite_strategy(start_gateway):
    gw = start_gateway(base_config(
        mocks("a", "b"), [chat_model("m", {"provider": "a"}, {"provider": "b"})],
        rules=[{"match": {"model": "m"}, "strategy": "weighted"}]))
    assert set(served_by(gw, "m", 60)) == {"a", "b"}


@pytest.mark.parametrize("strategy", ["fallback", "weighted", "least_latency", "least_cost", "least_busy"])
def test_every_strategy_fails_over(start_gateway, strategy):
    gw = start_gateway(base_config(mocks("bad", "good", bad={"fail_rate": 1.0, "fail_status": 500}),
                                   [chat_model("m", {"provider": "bad"}, {"provider": "good"}, strategy=strategy)]))
    assert served_by(gw, "m", 5) == {"good": 5}
