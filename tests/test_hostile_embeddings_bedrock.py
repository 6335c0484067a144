"""The hostile upstream (tests/upstreams/hostile.py) against the two paths the
chat suite (test_hostile_upstreams.py) leaves out: `/v1/embeddings` (OpenAI
and Gemini adapters) and a `type: bedrock` provider, whose calls carry a SigV4
signature and a session token. A redirect is never followed, a malformed or
oversized 200 fails over (or is a clean 502), an error body that echoes the
credentials reaches neither the client nor the log."""
from __future__ import annotations

import openai
import pytest

from tests.harness import Gateway, base_config
from tests.hostile_checks import (
    HEADER_SECRET,
    MAX_ANSWER_BYTES,
    MSG,
    SECRETS,
    answered_by_healthy,
    assert_clean,
    chat,
    embed,
    log_records,
    models_for,
    openai_error,
    provider_at,
)
from tests.upstreams.hostile import Attacker, Hostile
from tests.upstreams.openai_fake import FakeOpenAI

REDIRECTS = ["redirect-302", "redirect-307", "redirect-metadata"]
MALFORMED = ["html", "html-as-json", "invalid-json", "json-array", "json-null", "json-no-data", "empty", "huge",
             "huge-chunked"]
ECHOES = ["echo-400", "echo-500"]
EMBEDDERS = ["openai", "gemini"]
ADMIN = "admin-key-hostile"


@pytest.fixture(scope="module")
def rig(loop):
    attacker = Attacker(loop)
    hostile = Hostile(loop, attacker, huge_bytes=4 * MAX_ANSWER_BYTES)
    healthy = FakeOpenAI(loop, "healthy")
    providers = [{"name": "healthy", "type": "openai_compatible", "base_url": healthy.url}]
    models = []
    for behaviour in [*REDIRECTS, *MALFORMED, *ECHOES]:
        for adapter in [*EMBEDDERS, "bedrock"]:
            name = f"{adapter}-{behaviour}"
            providers.append(provider_at(adapter, name, hostile.at(behaviour)))
            if adapter == "bedrock":
                models += models_for(name, name, attempt_s=5, timeout_s=5)
            else:
                models += models_for(f"emb-{name}", name, kind="embedding", attempt_s=5, timeout_s=5)
    cfg = base_config(providers, models, breaker={"failures": 100000, "cooldown_s": 30})
    cfg["auth"]["admin_key"] = ADMIN      # GET /admin/providers shows each target's last error
    gw = Gateway(loop, cfg)
    yield gw, hostile, attacker
    gw.close()
    for server in (healthy, hostile, attacker):
        server.close()


@pytest.fixture
def logged():
    with log_records() as records:
        yield records


# -- embeddings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("adapter", EMBEDDERS)
@pytest.mark.parametrize("behaviour", [*REDIRECTS, *MALFORMED])
def test_an_embeddings_redirect_or_malformed_200_fails_over(rig, logged, adapter, behaviour):
    gw, _, attacker = rig
    r = embed(gw, f"emb-{adapter}-{behaviour}")
    answered_by_healthy(r)
    assert r.json()["data"][0]["embedding"]
    r = embed(gw, f"emb-{adapter}-{behaviour}-alone")
    err = openai_error(r, 502)
    if behaviour.startswith("redirect-"):
        assert err["code"] == "upstream_redirect"
    assert attacker.seen == []
    assert_clean(logged, r.text)


@pytest.mark.parametrize("adapter", EMBEDDERS)
def test_an_embeddings_answer_past_the_cap_is_refused_not_read(rig, adapter):
    gw, _, _ = rig
    r = embed(gw, f"emb-{adapter}-huge-chunked-alone")
    assert "over" in openai_error(r, 502)["message"]


@pytest.mark.parametrize("adapter", EMBEDDERS)
def test_an_embeddings_error_that_echoes_the_credentials_leaks_nothing(rig, logged, adapter):
    gw, hostile, _ = rig
    r = embed(gw, f"emb-{adapter}-echo-400")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text[:500]
    assert "x-tenant-token: ***" in r.json()["error"]["message"]    # the echo came back, its secrets hidden
    r5 = embed(gw, f"emb-{adapter}-echo-500")
    answered_by_healthy(r5)
    r5 = embed(gw, f"emb-{adapter}-echo-500-alone")
    openai_error(r5, 502)
    sent = hostile.seen[-1].headers
    assert HEADER_SECRET in sent.values()      # the upstream did get the secrets it echoed
    with gw.http(key=ADMIN) as http:
        shown = http.get("/admin/providers").text
    assert "you sent" in shown                 # the echo is the last error shown, its secrets hidden
    assert_clean(logged, r.text, r5.text, shown)


# -- Bedrock --------------------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", REDIRECTS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_bedrock_redirect_takes_neither_signature_nor_prompt_away(rig, logged, behaviour, stream):
    gw, hostile, attacker = rig
    r, _ = chat(gw, f"bedrock-{behaviour}", stream)
    answered_by_healthy(r)
    assert "x-amz-security-token" in {k.lower() for k in hostile.seen[-1].headers}   # it was signed and sent
    r, body = chat(gw, f"bedrock-{behaviour}-alone", stream)
    assert openai_error(r, 502)["code"] == "upstream_redirect"
    assert attacker.seen == []
    assert_clean(logged, body)


@pytest.mark.parametrize("behaviour", MALFORMED)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_bedrock_malformed_200_fails_over(rig, logged, behaviour, stream):
    gw, _, _ = rig
    r, body = chat(gw, f"bedrock-{behaviour}", stream)
    answered_by_healthy(r)
    r, body = chat(gw, f"bedrock-{behaviour}-alone", stream)
    openai_error(r, 502)
    assert_clean(logged, body)


def test_a_bedrock_error_that_echoes_the_signed_headers_leaks_nothing(rig, logged):
    gw, _, _ = rig
    r, body = chat(gw, "bedrock-echo-400", False)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", body[:500]
    assert "x-amz-security-token: ***" in r.json()["error"]["message"]
    r5, _ = chat(gw, "bedrock-echo-500", True)
    answered_by_healthy(r5)
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="bedrock-echo-500-alone", messages=MSG)
    assert e.value.status_code == 502
    with gw.http(key=ADMIN) as http:
        shown = http.get("/admin/providers").text
    assert "you sent" in shown
    assert_clean(logged, body, e.value.response.text, shown)
    assert SECRETS["bedrock-token"] not in str(e.value)
