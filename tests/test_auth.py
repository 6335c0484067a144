"""Gateway keys: where they are read from, how they are held, what they allow."""
from __future__ import annotations

import hashlib

import httpx
import openai
import pytest

from tests.harness import base_config, chat_model

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gw(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock"}],
                      [chat_model("open-model", {"provider": "mock"}), chat_model("team-a-chat", {"provider": "mock"}),
                       chat_model("secret-model", {"provider": "mock"})])
    cfg["auth"]["keys"] += [
        {"name": "team-a", "key": "sk-team-a", "models": ["team-a-*", "open-*"]},
        {"name": "hashed", "key_hash": "sha256:" + hashlib.sha256(b"sk-from-hash").hexdigest(),
         "models": ["open-model"]},
        {"name": "off", "key": "", "models": ["*"]},       # secret from an empty variable: disabled
    ]
    return start_gateway(cfg)


def test_bearer_and_azure_api_key_header(gw):
    assert gw.client("sk-team-a").chat.completions.create(model="open-model", messages=MSG).choices
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers={"api-key": "sk-team-a"},
                   json={"model": "open-model", "messages": MSG})
    assert r.status_code == 200


def test_key_given_as_hash(gw):
    assert gw.client("sk-from-hash").chat.completions.create(model="open-model", messages=MSG).choices


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer sk-wrong"}, {"authorization": "Basic c2stdGVzdA=="},
                                     {"api-key": ""}, {"authorization": "Bearer"}, {"api-key": "sk-test-x"}])
def test_missing_or_wrong_key_is_401(gw, headers):
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers=headers, json={"model": "open-model", "messages": MSG})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_401_comes_before_body_checks(gw):
    r = httpx.post(f"{gw.url}/v1/chat/completions", content=b"{not json", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401


def test_sdk_raises_authentication_error(gw):
    with pytest.raises(openai.AuthenticationError):
        gw.client("sk-nope").models.list()


def test_model_outside_allow_list_is_404(gw):
    with pytest.raises(openai.NotFoundError) as e:
        gw.client("sk-team-a").chat.completions.create(model="secret-model", messages=MSG)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        gw.client("sk-team-a").models.retrieve("secret-model")


def test_models_list_is_the_keys_own(gw):
    assert sorted(m.id for m in gw.client("sk-team-a").models.list()) == ["open-model", "team-a-chat"]
    assert [m.id for m in gw.client("sk-from-hash").models.list()] == ["open-model"]


def test_disabled_key_does_not_authenticate(gw):
    r = httpx.get(f"{gw.url}/v1/models", headers={"api-key": ""})
    assert r.status_code == 401
    assert len(gw.runtime.keys) == 3


def test_keys_are_held_only_as_hashes(gw):
    held = repr(vars(gw.runtime.keys))
    assert "sk-team-a" not in held and "sk-test" not in held
