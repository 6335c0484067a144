"""A provider's own limits (`providers[].limits`): a target at its limit is
skipped by the router like one that answered 429."""
from __future__ import annotations

import asyncio
from collections import Counter

import openai
import pytest

from tests.harness import base_config, chat_model

MSG = [{"role": "user", "content": "hi"}]


def served_by(raw):
    return raw.headers["x-gateway-provider"], raw.headers["x-gateway-attempts"]


def test_rpm_full_target_is_skipped(start_gateway):
    gw = start_gateway(base_config(
        [{"name": "a", "type": "mock", "limits": {"rpm": 2}}, {"name": "b", "type": "mock"}],
        [chat_model("m", {"provider": "a"}, {"provider": "b"})]))
    c = gw.client()
    got = [served_by(c.chat.completions.with_raw_response.create(model="m", messages=MSG)) for _ in range(4)]
    assert got == [("a", "1"), ("a", "1"), ("b", "1"), ("b", "1")]


def test_every_target_full_is_429(start_gateway):
    gw = start_gateway(base_config([{"name": "a", "type": "mock", "limits": {"rpm": 1}}],
                                   [chat_model("m", {"provider": "a"})]))
    c = gw.client()
    c.chat.completions.create(model="m", messages=MSG)
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=MSG)
    assert int(e.value.response.headers["retry-after"]) >= 1
    assert e.value.response.headers["x-gateway-attempts"] == "0"


def test_concurrency_slots_spill_over_and_come_back(start_gateway, loop):
    gw = start_gateway(base_config(
        [{"name": "a", "type": "mock", "latency_ms": 300, "limits": {"concurrent": 1}},
         {"name": "b", "type": "mock", "latency_ms": 300}],
        [chat_model("m", {"provider": "a"}, {"provider": "b"})]))

    async def burst():
        c = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="sk-test", max_retries=0)
        rs = await asyncio.gather(*(c.chat.completions.with_raw_response.create(model="m", messages=MSG)
                                    for _ in range(3)))
        await c.close()
        return Counter(r.headers["x-gateway-provider"] for r in rs)

    assert loop.run(burst()) == {"a": 1, "b": 2}
    # Streams hold their slot until they end, then give it back.
    for _ in range(2):
        with gw.client().chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:
            assert r.headers["x-gateway-provider"] == "a"
            list(r.parse())


def test_failed_attempt_gives_its_slot_back(start_gateway):
    gw = start_gateway(base_config(
        [{"name": "a", "type": "mock", "fail_rate": 1.0, "limits": {"concurrent": 1}}, {"name": "b", "type": "mock"}],
        [chat_model("m", {"provider": "a"}, {"provider": "b"})], breaker={"failures": 1000, "cooldown_s": 1}))
    c = gw.client()
    for _ in range(3):     # each request tries `a` again: its slot was freed by the failure
        assert served_by(c.chat.completions.with_raw_response.create(model="m", messages=MSG)) == ("b", "2")


def test_tpm_counts_real_usage(start_gateway):
    gw = start_gateway(base_config(
        [{"name": "a", "type": "mock", "limits": {"tpm": 60}}, {"name": "b", "type": "mock"}],
        [chat_model("m", {"provider": "a"}, {"provider": "b"})]))
    c = gw.client()
    providers = [served_by(c.chat.completions.with_raw_response.create(model="m", messages=MSG))[0]
                 for _ in range(4)]
    assert providers[:2] == ["a", "a"] and providers[-1] == "b"   # ~21 real tokens each: the third no longer fits
