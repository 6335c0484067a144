"""Failover, deadlines, retries and the circuit breaker, against real
upstreams on loopback that fail the ways real ones do."""
from __future__ import annotations

import time

import openai
import pytest

from tests.harness import base_config, chat_model, free_port
from tests.upstreams.openai_fake import recorded

MSG = [{"role": "user", "content": "hi"}]


def upstream(fake, name):
    return {"name": name, "type": "openai_compatible", "base_url": fake.url, "api_key": f"sk-{name}"}


@pytest.fixture
def pair(start_gateway, fake_openai):
    """Model `m`: fallback from `a` to `b`, with a breaker that never opens unless asked."""
    def make(**model_kw):
        a, b = fake_openai("a"), fake_openai("b")
        b.chat_body = recorded("chat_completion.json").replace(b"Hello!", b"From B!")
        gw = start_gateway(base_config(
            [upstream(a, "a"), upstream(b, "b")],
            [chat_model("m", {"provider": "a"}, {"provider": "b"}, **model_kw)],
            breaker={"failures": 1000, "cooldown_s": 30}))
        return gw, a, b
    return make


@pytest.mark.parametrize("status,body", [
    (429, "error_429.json"), (500, "error_500.json"), (503, "error_500.json"), (401, "error_401.json")])
def test_fails_over_on_retryable_status(pair, status, body):
    gw, a, b = pair()
    a.fail(status, recorded(body))
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.parse().choices[0].message.content.startswith("From B!")
    assert raw.headers["x-gateway-provider"] == "b"
    assert raw.headers["x-gateway-attempts"] == "2"
    assert len(a.seen) == 1 and len(b.seen) == 1


def test_request_fault_is_returned_not_retried(pair):
    gw, a, b = pair()
    a.fail(400, recorded("error_400_context.json"))
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert e.value.status_code == 400
    assert e.value.code == "context_length_exceeded" and e.value.param == "messages"
    assert "maximum context length" in e.value.message
    assert len(b.seen) == 0
    assert e.value.response.headers["x-gateway-attempts"] == "1"


def test_refused_connection_fails_over(start_gateway, fake_openai):
    b = fake_openai("b")
    dead = {"name": "dead", "type": "openai_compatible", "base_url": f"http://127.0.0.1:{free_port()}/v1"}
    gw = start_gateway(base_config([dead, upstream(b, "b")],
                                   [chat_model("m", {"provider": "dead"}, {"provider": "b"})]))
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "b"


def test_slow_target_times_out_and_fails_over(pair):
    gw, a, b = pair(attempt_timeout_s=0.3, timeout_s=10)
    a.ok(delay_s=5)
    started = time.monotonic()
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "b"
    assert time.monotonic() - started < 2


def test_deadline_covers_all_attempts(pair):
    gw, a, b = pair(timeout_s=0.5, retries=5)
    a.ok(delay_s=3)
    b.ok(delay_s=3)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert time.monotonic() - started < 2
    assert e.value.status_code == 504
    assert e.value.code == "upstream_timeout"


def test_all_targets_failing_answers_the_last_failure(pair):
    gw, a, b = pair(retries=1)
    a.fail(500, recorded("error_500.json"))
    b.fail(429, recorded("error_429.json"), headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert e.value.response.headers["retry-after"] == "7"
    assert e.value.response.headers["x-gateway-attempts"] == "2"
    assert e.value.body["type"] == "rate_limit_error"


def test_retries_bound_attempts_and_wrap_around(pair):
    gw, a, b = pair(retries=3)
    a.fail(500, recorded("error_500.json"))
    b.fail(502, recorded("error_500.json"))
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert e.value.status_code == 502
    assert len(a.seen) == 2 and len(b.seen) == 2


def test_no_retries_means_one_attempt(pair):
    gw, a, b = pair(retries=0)
    a.fail(500, recorded("error_500.json"))
    with pytest.raises(openai.APIStatusError):
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert len(b.seen) == 0


def test_upstream_secret_never_reaches_the_client(pair):
    gw, a, b = pair(retries=0)
    a.fail(500, '{"error": {"message": "bad key sk-a in header", "type": "server_error"}}')
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert "sk-a" not in e.value.response.text


def test_stream_fails_over_before_first_byte(pair):
    gw, a, b = pair()
    a.fail(503, recorded("error_500.json"))
    with gw.client().chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:
        assert r.headers["x-gateway-provider"] == "b"
        text = "".join(c.choices[0].delta.content or "" for c in r.parse() if c.choices)
    assert text == "Hello there, friend é 🚀"


def test_stream_dropped_before_any_event_fails_over(pair):
    gw, a, b = pair()
    a.ok(drop_before_body=True)
    with gw.client().chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as r:
        assert r.headers["x-gateway-provider"] == "b"
        assert len([c for c in r.parse()]) == 6


def test_stream_cut_mid_way_ends_with_an_error_event(pair):
    gw, a, b = pair()
    a.ok(stream_cut_after=2)
    stream = gw.client().chat.completions.create(model="m", messages=MSG, stream=True)
    got = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content)
    assert got == ["", "Hello"]                # whole events only, then the error
    assert "broke the stream off" in e.value.message
    assert len(b.seen) == 0                    # no failover once bytes reached the client


def test_breaker_opens_skips_and_probes_back(start_gateway, fake_openai):
    a, b = fake_openai("a"), fake_openai("b")
    gw = start_gateway(base_config(
        [{**upstream(a, "a"), "breaker": {"failures": 2, "cooldown_s": 0.5}}, upstream(b, "b")],
        [chat_model("m", {"provider": "a"}, {"provider": "b"})]))
    a.fail(500, recorded("error_500.json"))
    c = gw.client()
    for _ in range(2):
        c.chat.completions.create(model="m", messages=MSG)
    assert len(a.seen) == 2
    for _ in range(3):                      # open: `a` is not even tried
        raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG)
        assert raw.headers["x-gateway-attempts"] == "1" and raw.headers["x-gateway-provider"] == "b"
    assert len(a.seen) == 2
    time.sleep(0.6)
    a.ok()                                  # half-open: one probe, it succeeds, closed again
    raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "a"
    assert gw.runtime.book._stats["a/m"].breaker.state(0) == "closed"


def test_every_circuit_open_answers_503_with_retry_after(start_gateway, fake_openai):
    a = fake_openai("a")
    gw = start_gateway(base_config([{**upstream(a, "a"), "breaker": {"failures": 1, "cooldown_s": 20}}],
                                   [chat_model("m", {"provider": "a"}, retries=0)]))
    a.fail(500, recorded("error_500.json"))
    c = gw.client()
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m", messages=MSG)
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model="m", messages=MSG)
    assert e.value.status_code == 503 and e.value.code == "no_healthy_target"
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 20
    assert len(a.seen) == 1


def test_mock_knobs_fail_over(start_gateway):
    gw = start_gateway(base_config(
        [{"name": "flaky", "type": "mock", "fail_rate": 1.0, "fail_status": 429},
         {"name": "mock", "type": "mock", "latency_ms": 5}],
        [chat_model("m", {"provider": "flaky"}, {"provider": "mock"})]))
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
    # Upstream waiting is not the gateway's own time.
    assert float(raw.headers["x-gateway-overhead-ms"]) < 5


def test_client_leaving_mid_stream_closes_the_upstream_call(pair):
    gw, a, b = pair()
    a.ok(chunk_delay_s=0.2)
    with gw.http().stream("POST", "/v1/chat/completions",
                          json={"model": "m", "stream": True, "messages": MSG}) as r:
        next(r.iter_raw())                 # the first event arrived; now hang up
    deadline = time.monotonic() + 3
    while a.streams_abandoned == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert a.streams_abandoned == 1
    assert gw.runtime.book._stats["a/m"].in_flight == 0
