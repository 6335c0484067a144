"""OpenAI-compatible hosts by name: their base URL, key and the fields they reject."""
from __future__ import annotations

import orjson
import pytest

from gateway.config import parse
from providers.base import Call
from providers.presets import PRESETS, adapted_body
from tests.harness import base_config, chat_model


def call(data):
    return Call("chat", orjson.dumps(data), data, "upstream-model")


def test_every_preset_knows_its_host():
    for name in ("groq", "together", "mistral", "deepseek", "openrouter", "fireworks", "xai", "perplexity",
                 "ollama", "vllm", "lmstudio"):
        assert PRESETS[name].base_url.startswith("http")


def test_hosted_presets_need_a_key_local_ones_do_not(monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    checked = parse("providers: [{name: g, type: groq}, {name: o, type: ollama}, {name: v, type: vllm}]\n", {})
    assert checked.disabled == {"g": "api_key is empty"}


def test_key_comes_from_the_hosts_usual_variable(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env")
    checked = parse("providers: [{name: g, type: groq}]\n", {})
    assert checked.disabled == {} and checked.config.providers[0].api_key == "gsk-from-env"
    assert checked.config.providers[0].base_url == "https://api.groq.com/openai/v1"


def test_untouched_body_passes_as_bytes():
    assert adapted_body(call({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
                        PRESETS["groq"], "g") is None


def test_groq_drops_what_it_rejects():
    data = {"model": "m", "messages": [{"role": "user", "content": "x", "name": "ann"}], "logprobs": True,
            "top_logprobs": 2, "temperature": 0.5}
    out = orjson.loads(adapted_body(call(data), PRESETS["groq"], "g"))
    assert out == {"model": "upstream-model", "messages": [{"role": "user", "content": "x"}], "temperature": 0.5}


def test_mistral_renames_seed():
    out = orjson.loads(adapted_body(call({"model": "m", "messages": [], "seed": 7, "user": "u"}),
                                    PRESETS["mistral"], "m"))
    assert out == {"model": "upstream-model", "messages": [], "random_seed": 7}


@pytest.mark.parametrize("preset", ["groq", "mistral", "vllm"])
def test_end_to_end_through_a_preset(start_gateway, fake_openai, monkeypatch, preset):
    fake = fake_openai()
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test")
    monkeypatch.setenv("MISTRAL_API_KEY", "ms-test")
    gw = start_gateway(base_config([{"name": "host", "type": preset, "base_url": fake.url}],
                                   [chat_model("m", {"provider": "host", "model": "llama-3.3-70b"})]))
    done = gw.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "x", "name": "ann"}],
                                               seed=3, logprobs=True)
    assert done.choices[0].message.content.startswith("Hello!")
    sent = fake.seen[-1]
    assert sent.json["model"] == "llama-3.3-70b"
    if preset == "groq":
        assert sent.headers["Authorization"] == "Bearer gsk-test"
        assert "logprobs" not in sent.json and "name" not in sent.json["messages"][0] and sent.json["seed"] == 3
    elif preset == "mistral":
        assert sent.json["random_seed"] == 3 and "seed" not in sent.json and "logprobs" not in sent.json
    else:
        assert "Authorization" not in sent.headers and sent.json["logprobs"] is True
