"""Upstreams that attack the connection itself (tests/upstreams/hostile.py):
a TCP reset before the answer, after its headers or mid-stream; a body that
trickles or stalls half way. The same faults for each adapter (OpenAI,
Anthropic, Gemini, Bedrock), chat whole and streamed, and embeddings.

The contract (docs/routing.md): before the client has a byte, a fault fails
over (or is a clean 502/504 in OpenAI's shape); after it, the stream ends with
an OpenAI-shaped error event. A slow body is bounded by the model's deadline:
`attempt_timeout_s` hands it to the next target, `timeout_s` ends it.
Never a 500, a hang, a traceback or a provider secret."""
from __future__ import annotations

import time

import openai
import pytest

from tests.harness import Gateway, base_config, chat_model
from tests.hostile_checks import (
    MSG,
    answered_by_healthy,
    assert_clean,
    chat,
    embed,
    error_event,
    log_records,
    models_for,
    openai_error,
    provider_at,
    words,
)
from tests.upstreams.hostile import RESETS_BEFORE, SLOW, Attacker, Hostile
from tests.upstreams.openai_fake import FakeOpenAI

ADAPTERS = ["openai", "anthropic", "gemini", "bedrock"]
EMBEDDERS = ["openai", "gemini"]
BEHAVIOURS = [*RESETS_BEFORE, "reset-midstream", *SLOW, "slow-first"]
TIMEOUT_S = 0.5          # the `-alone` models' whole deadline
ATTEMPT_S = 0.2          # the fallback models' cap per attempt
TRICKLE_S = 0.1          # a byte per this: no answer completes inside either
IDLE_S = 0.2             # the `idle` providers' idle_timeout_s (the longest silence on a connection)


@pytest.fixture(scope="module")
def rig(loop):
    attacker = Attacker(loop)
    hostile = Hostile(loop, attacker, trickle_s=TRICKLE_S)
    healthy = FakeOpenAI(loop, "healthy")
    providers = [{"name": "healthy", "type": "openai_compatible", "base_url": healthy.url}]
    models = []
    for behaviour in BEHAVIOURS:
        # A reset answers at once: its attempt and its deadline only have to outlast the attempts
        # on a loaded machine (a first event 0.2 s late once failed over, a CI run on 2 cores).
        # A slow body is what the short ones are there to cut.
        slow = behaviour in SLOW or behaviour == "slow-first"
        times = {"attempt_s": ATTEMPT_S if slow else 2, "timeout_s": TIMEOUT_S if slow else 10}
        for adapter in ADAPTERS:
            name = f"{adapter}-{behaviour}"
            providers.append(provider_at(adapter, name, hostile.at(behaviour)))
            models += models_for(name, name, **times)
        for adapter in EMBEDDERS:
            models += models_for(f"emb-{adapter}-{behaviour}", f"{adapter}-{behaviour}", kind="embedding", **times)
    for adapter in ("openai", "bedrock"):      # a silence past idle_timeout_s, well inside the deadline
        providers.append(provider_at(adapter, f"{adapter}-idle", hostile.at("stall-half"), idle_timeout_s=IDLE_S))
        models.append(chat_model(f"{adapter}-idle", {"provider": f"{adapter}-idle", "model": "m"}, timeout_s=10))
    gw = Gateway(loop, base_config(providers, models, breaker={"failures": 100000, "cooldown_s": 30}))
    yield gw, hostile
    gw.close()
    for server in (healthy, hostile, attacker):
        server.close()


@pytest.fixture
def logged():
    with log_records() as records:
        yield records


# -- resets ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("behaviour", RESETS_BEFORE)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_reset_before_the_first_byte_fails_over(rig, logged, adapter, behaviour, stream):
    gw, _ = rig
    model = f"{adapter}-{behaviour}"
    r, body = chat(gw, model, stream)
    answered_by_healthy(r)
    assert (words(body) if stream else r.json()["choices"][0]["message"]["content"])
    r, body = chat(gw, f"{model}-alone", stream)
    openai_error(r, 502)
    assert any("failed" in rec.getMessage() for rec in logged)     # the failures were seen, as warnings
    assert_clean(logged, body)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_reset_mid_stream_ends_it_with_an_error_event(rig, logged, adapter):
    gw, _ = rig
    for model in (f"{adapter}-reset-midstream", f"{adapter}-reset-midstream-alone"):
        r, body = chat(gw, model, True)
        assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "1", body[:500]
        assert r.headers["x-gateway-provider"] == f"{adapter}-reset-midstream"
        assert words(body) == "first words"
        assert error_event(body)["code"] == "upstream_error"
        assert_clean(logged, body)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_reset_mid_stream_is_an_error_the_sdk_raises(rig, adapter):
    gw, _ = rig
    seen = []
    with pytest.raises(openai.APIError):
        for chunk in gw.client().chat.completions.create(model=f"{adapter}-reset-midstream", messages=MSG,
                                                         stream=True):
            seen += [c.delta.content for c in chunk.choices if c.delta.content]
    assert seen == ["first words"]


@pytest.mark.parametrize("behaviour", [*RESETS_BEFORE, "reset-midstream"])
@pytest.mark.parametrize("adapter", EMBEDDERS)
def test_an_embeddings_reset_fails_over(rig, logged, adapter, behaviour):
    gw, _ = rig
    client = gw.client()
    raw = client.embeddings.with_raw_response.create(model=f"emb-{adapter}-{behaviour}", input="x")
    assert raw.headers["x-gateway-provider"] == "healthy" and raw.headers["x-gateway-attempts"] == "2"
    assert raw.parse().data[0].embedding
    r = embed(gw, f"emb-{adapter}-{behaviour}-alone")
    openai_error(r, 502)
    assert_clean(logged, r.text)


# -- slow bodies -------------------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("behaviour", SLOW)
def test_a_slow_whole_answer_fails_over_at_the_attempt_cap(rig, logged, adapter, behaviour):
    """Headers at once, then a body that would not be whole inside `attempt_timeout_s`:
    the next target answers."""
    gw, _ = rig
    started = time.monotonic()
    r, body = chat(gw, f"{adapter}-{behaviour}", False)
    took = time.monotonic() - started
    answered_by_healthy(r)
    assert ATTEMPT_S <= took < ATTEMPT_S + 1.0
    assert_clean(logged, body)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("behaviour", SLOW)
def test_a_slow_whole_answer_is_a_504_at_the_deadline(rig, logged, adapter, behaviour):
    gw, _ = rig
    started = time.monotonic()
    r, body = chat(gw, f"{adapter}-{behaviour}-alone", False)
    took = time.monotonic() - started
    assert openai_error(r, 504)["code"] == "upstream_timeout"
    assert TIMEOUT_S <= took < TIMEOUT_S + 1.0
    assert_clean(logged, body)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("behaviour", SLOW)
def test_a_slow_stream_ends_at_the_deadline_with_an_error_event(rig, logged, adapter, behaviour):
    """The first words came at once (the client has bytes); the rest trickles
    or stalls: the stream is ended at `timeout_s` with `deadline_exceeded`, and
    the upstream connection closed then, not held for the rest of the trickle."""
    gw, hostile = rig
    abandoned = hostile.streams_abandoned
    started = time.monotonic()
    r, body = chat(gw, f"{adapter}-{behaviour}-alone", True)
    took = time.monotonic() - started
    assert r.status_code == 200 and r.headers["x-gateway-attempts"] == "1", body[:500]
    assert words(body).startswith("first words")
    assert error_event(body)["code"] == "deadline_exceeded"
    assert TIMEOUT_S <= took < TIMEOUT_S + 1.0
    for _ in range(40):
        if hostile.streams_abandoned > abandoned:
            break
        time.sleep(0.025)
    assert hostile.streams_abandoned > abandoned
    assert_clean(logged, body)


@pytest.mark.parametrize("adapter", EMBEDDERS)
@pytest.mark.parametrize("behaviour", SLOW)
def test_slow_embeddings_fail_over_or_time_out(rig, logged, adapter, behaviour):
    gw, _ = rig
    started = time.monotonic()
    r = embed(gw, f"emb-{adapter}-{behaviour}")
    assert ATTEMPT_S <= time.monotonic() - started < ATTEMPT_S + 1.0
    answered_by_healthy(r)
    assert r.json()["data"][0]["embedding"]
    started = time.monotonic()
    r = embed(gw, f"emb-{adapter}-{behaviour}-alone")
    assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + 1.0
    assert openai_error(r, 504)["code"] == "upstream_timeout"
    assert_clean(logged, r.text)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_stream_whose_first_event_trickles_fails_over_or_times_out(rig, logged, adapter):
    """No byte for the client yet: the attempt cap hands it on, the deadline ends it with a 504."""
    gw, _ = rig
    started = time.monotonic()
    r, body = chat(gw, f"{adapter}-slow-first", True)
    assert ATTEMPT_S <= time.monotonic() - started < ATTEMPT_S + 1.0
    answered_by_healthy(r)
    assert words(body)
    started = time.monotonic()
    r, body = chat(gw, f"{adapter}-slow-first-alone", True)
    assert TIMEOUT_S <= time.monotonic() - started < TIMEOUT_S + 1.0
    assert openai_error(r, 504)["code"] == "upstream_timeout"
    assert_clean(logged, body)


@pytest.mark.parametrize("adapter", ["openai", "bedrock"])
def test_a_silence_past_idle_timeout_ends_the_call_before_the_deadline(rig, logged, adapter):
    """`idle_timeout_s` bounds each silence on the connection: a stalled whole answer is
    retried, then a 504; a stalled stream ends with an error event; both long before `timeout_s`."""
    gw, _ = rig
    started = time.monotonic()
    r, body = chat(gw, f"{adapter}-idle", False)
    assert openai_error(r, 504)["code"] == "upstream_timeout"
    assert r.headers["x-gateway-attempts"] == "3"
    r, body = chat(gw, f"{adapter}-idle", True)
    assert r.status_code == 200 and words(body) == "first words"
    assert error_event(body)["code"] == "upstream_timeout"
    assert time.monotonic() - started < 3.0
    assert_clean(logged, body)
