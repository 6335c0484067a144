"""Rate limits and budgets end to end, through one gateway on the embedded
store, with the official openai SDK and httpx as clients."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import openai
import orjson
import pytest

from gateway.auth import digest_of, key_id
from gateway.spend import NANO, today
from tests.harness import base_config, chat_model, free_port

MSG = [{"role": "user", "content": "hello there"}]
PER_TOKEN = {"input_per_mtok": 1000, "output_per_mtok": 2000}     # $0.001 and $0.002 a token
PRICES = {"mock/*": PER_TOKEN, "trickle/*": PER_TOKEN, "broken/*": {"per_request": 5}}


def config(key_limits=None, budget=None, model_limits=None):
    cfg = base_config(
        [{"name": "mock", "type": "mock"},
         {"name": "slow", "type": "mock", "latency_ms": 400},
         {"name": "trickle", "type": "mock", "stream_chunks": 40, "reply_words": 40, "chunk_delay_ms": 20},
         {"name": "broken", "type": "mock", "fail_rate": 1.0}],
        [chat_model("m", {"provider": "mock"}, limits=model_limits or {}),
         chat_model("slow", {"provider": "slow"}),
         chat_model("trickle", {"provider": "trickle"}),
         chat_model("failover", {"provider": "broken"}, {"provider": "mock"}),
         chat_model("down", {"provider": "broken"}, retries=0)],
        prices=PRICES)
    key = cfg["auth"]["keys"][0]
    key["limits"] = key_limits or {}
    if budget:
        key["budget"] = budget
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other"})
    return cfg


def chat_body(model="m", **extra) -> bytes:
    return orjson.dumps({"model": model, "messages": MSG, **extra})


def ledger(loop, gw):
    """Today's ledger rows, from the gateway's own store."""
    return loop.run(gw.runtime.store.ledger.rows(today(), today()))


def spent(loop, gw):
    """What the key `test` has spent against its daily budget."""
    return loop.run(gw.runtime.store.limits.budget_spent(f"budget:{key_id(digest_of('sk-test'))}:{today()}:{today()}"))


def test_requests_over_rpm_are_429_with_openai_headers(start_gateway):
    gw = start_gateway(config({"rpm": 3, "tpm": 100_000}))
    c = gw.client()
    for left in (2, 1, 0):
        raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG)
        h = raw.headers
        assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("3", str(left))
        assert h["x-ratelimit-reset-requests"] in ("59s", "1m0s")
        assert h["x-ratelimit-limit-tokens"] == "100000"
        assert 0 < int(h["x-ratelimit-remaining-tokens"]) < 100_000
        assert h["x-ratelimit-reset-tokens"].endswith("s")
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=MSG)
    h = e.value.response.headers
    assert 1 <= int(h["retry-after"]) <= 60
    assert (h["x-ratelimit-limit-requests"], h["x-ratelimit-remaining-requests"]) == ("3", "0")
    assert h["x-ratelimit-reset-requests"].endswith("s")
    assert e.value.code == "rate_limit_exceeded" and e.value.body["type"] == "requests"
    # The other key has limits of its own (none).
    assert gw.client("sk-other").chat.completions.create(model="m", messages=MSG).choices


def test_streamed_answers_carry_the_headers_too(start_gateway):
    gw = start_gateway(config({"rpm": 5}))
    with gw.client().chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:
        assert r.headers["x-ratelimit-remaining-requests"] == "4"
        assert list(r.iter_lines())


def test_token_estimates_are_reconciled_with_usage(start_gateway):
    gw = start_gateway(config({"tpm": 1000}))
    http = gw.http()
    body = chat_body(max_tokens=600)
    estimate = len(body) // 4 + 600
    first = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert first.status_code == 200
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - estimate)
    used = first.json()["usage"]["total_tokens"]
    # Two estimates don't fit in 1000, but the first request only used `used`.
    second = http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert second.status_code == 200
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - used - estimate)


def test_a_request_bigger_than_tpm_is_told_to_wait_a_window(start_gateway):
    gw = start_gateway(config({"tpm": 1000}))
    with pytest.raises(openai.RateLimitError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG, max_tokens=5000)
    assert e.value.body["type"] == "tokens" and e.value.response.headers["retry-after"] == "60"
    assert e.value.response.headers["x-ratelimit-remaining-tokens"] == "0"


def test_concurrent_requests_past_the_limit_are_429_and_slots_come_back(start_gateway):
    gw = start_gateway(config({"concurrent": 2}))

    def ask(_):
        with gw.http() as http:
            return http.post("/v1/chat/completions", content=chat_body("slow"),
                             headers={"content-type": "application/json"})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, range(6)))
    assert sorted(r.status_code for r in answers) == [200, 200, 429, 429, 429, 429]
    refused = next(r for r in answers if r.status_code == 429)
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "in flight" in error["message"]
    assert refused.headers["retry-after"] == "1"
    with ThreadPoolExecutor(2) as pool:    # both slots were released
        assert [r.status_code for r in pool.map(ask, range(2))] == [200, 200]


def test_budget_refuses_with_insufficient_quota(start_gateway, loop):
    cfg = config(budget={"usd": 0.03, "period": "day"})
    cfg["prices"] = {"mock/*": {"per_request": 0.01}}
    gw = start_gateway(cfg)
    c = gw.client()
    costs = [float(c.chat.completions.with_raw_response.create(model="m", messages=MSG).headers["x-gateway-cost-usd"])
             for _ in range(3)]
    assert costs == [0.01] * 3
    with pytest.raises(openai.RateLimitError) as e:
        c.chat.completions.create(model="m", messages=MSG)
    assert e.value.code == "insufficient_quota" and e.value.body["type"] == "insufficient_quota"
    assert "budget" in e.value.message
    assert spent(loop, gw) == 3 * NANO // 100 == sum(r.cost_nano for r in ledger(loop, gw))


def test_model_limits_hold_across_keys(start_gateway):
    gw = start_gateway(config({"rpm": 100}, model_limits={"rpm": 2}))
    assert gw.client().chat.completions.create(model="m", messages=MSG).choices
    assert gw.client("sk-other").chat.completions.create(model="m", messages=MSG).choices
    with pytest.raises(openai.RateLimitError) as e:
        gw.client("sk-other").chat.completions.create(model="m", messages=MSG)
    assert "model 'm'" in e.value.message and int(e.value.response.headers["retry-after"]) >= 1
    assert gw.client().chat.completions.create(model="slow", messages=MSG).choices    # other models are free


def test_a_stream_cut_by_the_client_frees_its_slot_and_pays_what_it_used(start_gateway, loop):
    gw = start_gateway(config({"concurrent": 1, "tpm": 100_000}, budget={"usd": 100, "period": "day"}))
    body = chat_body("trickle", stream=True)
    with gw.http() as http:
        with http.stream("POST", "/v1/chat/completions", content=body,
                         headers={"content-type": "application/json"}) as r:
            assert r.status_code == 200
            events = 0
            for line in r.iter_lines():
                events += line.startswith("data:")
                if events == 4:
                    break       # leave mid-answer
    deadline = time.monotonic() + 5
    with gw.http() as http:
        while True:     # the gateway notices the client left and lets go of the slot
            after = http.post("/v1/chat/completions", content=chat_body(max_tokens=10),
                              headers={"content-type": "application/json"})
            if after.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert after.status_code == 200
    row = next(r for r in ledger(loop, gw) if r.model == "trickle")
    assert row.prompt_tokens == len(body) // 4
    assert 0 < row.completion_tokens < 40        # what was relayed, not the whole answer
    assert row.cost_nano == row.prompt_tokens * 1_000_000 + row.completion_tokens * 2_000_000   # PER_TOKEN, in nano-USD
    # The token window and the budget were charged the same.
    after_estimate = len(chat_body(max_tokens=10)) // 4 + 10
    assert after.headers["x-ratelimit-remaining-tokens"] == \
        str(100_000 - row.prompt_tokens - row.completion_tokens - after_estimate)
    assert spent(loop, gw) == row.cost_nano + next(r for r in ledger(loop, gw) if r.model == "m").cost_nano


def test_a_failed_over_request_is_charged_once_for_the_attempt_that_served(start_gateway, loop):
    gw = start_gateway(config({"rpm": 10}, budget={"usd": 100, "period": "day"}))
    raw = gw.client().chat.completions.with_raw_response.create(model="failover", messages=MSG)
    assert raw.headers["x-gateway-attempts"] == "2" and raw.headers["x-gateway-provider"] == "mock"
    assert raw.headers["x-ratelimit-remaining-requests"] == "9"
    rows = ledger(loop, gw)
    assert [(r.model, r.provider, r.requests) for r in rows] == [("failover", "mock", 1)]
    assert spent(loop, gw) == rows[0].cost_nano == round(float(raw.headers["x-gateway-cost-usd"]) * NANO)


def test_a_request_that_failed_everywhere_gives_back_its_slot_tokens_and_hold(start_gateway, loop):
    # "down" holds $5 (its price per request): a budget of $6 has room for one hold at a time.
    gw = start_gateway(config({"concurrent": 1, "tpm": 1000}, budget={"usd": 6, "period": "day"}))
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as e:
            gw.client().chat.completions.create(model="down", messages=MSG)
        assert e.value.status_code == 502
    assert spent(loop, gw) == 0 and ledger(loop, gw) == []
    ok = gw.http().post("/v1/chat/completions", content=chat_body(), headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.headers["x-ratelimit-remaining-tokens"] == str(1000 - len(chat_body()) // 4)


@pytest.mark.parametrize("policy,status", [("open", 200), ("closed", 503)])
def test_an_unreachable_redis_applies_the_configured_policy(start_gateway, policy, status):
    cfg = config({"rpm": 1})
    cfg["state"] = {"redis_url": f"redis://127.0.0.1:{free_port()}/0", "on_redis_error": policy}
    gw = start_gateway(cfg)
    answers = [gw.http().post("/v1/chat/completions", content=chat_body(),
                              headers={"content-type": "application/json"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [status] * 3
    if status == 503:
        assert answers[0].json()["error"]["code"] == "limits_unavailable" and answers[0].headers["retry-after"] == "1"
