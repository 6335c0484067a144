"""OpenAI-compatible hosts by name: `type: groq` brings Groq's base URL, where
its key is read from, and the request fields it rejects.

A preset is the `openai_compatible` adapter with defaults; everything can still
be set in the config (a preset's `base_url` for a proxy in front of it, say).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import Field

from providers.base import Call, Provider
from providers.http import UpstreamRequest
from providers.openai import OpenAICompatibleProvider, api

log = logging.getLogger("gateway.providers")

# Fields OpenAI defines that these hosts answer 400 for; the gateway drops them
# (logged at debug) so the same client code works against every host.
_NO_LOGPROBS = frozenset({"logprobs", "top_logprobs", "logit_bias"})
_CHAT = frozenset({"chat", "embeddings"})     # chat hosts: no /videos, no images
_HEARS = frozenset({"transcriptions", "translations"})   # /audio/transcriptions and /audio/translations


@dataclass(frozen=True)
class Preset:
    base_url: str
    key_env: str = ""                      # where the key is read from when the config gives none
    key_required: bool = True              # hosted: no key, no provider; local servers need none
    drop: frozenset[str] = frozenset()
    rename: dict[str, str] = field(default_factory=dict)
    drop_message_names: bool = False       # `messages[].name` rejected
    stream_usage: bool = True              # knows `stream_options.include_usage`
    operations: frozenset[str] = _CHAT     # what the host serves of OpenAI's API


PRESETS: dict[str, Preset] = {
    "groq": Preset("https://api.groq.com/openai/v1", "GROQ_API_KEY", drop=_NO_LOGPROBS, drop_message_names=True,
                   operations=_CHAT | _HEARS | {"speech"}),
    "together": Preset("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "mistral": Preset("https://api.mistral.ai/v1", "MISTRAL_API_KEY",
                      drop=_NO_LOGPROBS | {"store", "metadata", "service_tier", "user"},
                      rename={"seed": "random_seed"}),
    "deepseek": Preset("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "openrouter": Preset("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "fireworks": Preset("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "xai": Preset("https://api.x.ai/v1", "XAI_API_KEY"),
    "perplexity": Preset("https://api.perplexity.ai", "PERPLEXITY_API_KEY", drop=_NO_LOGPROBS, stream_usage=False),
    "ollama": Preset("http://127.0.0.1:11434/v1", key_required=False, stream_usage=False),
    "vllm": Preset("http://127.0.0.1:8000/v1", "VLLM_API_KEY", key_required=False, operations=_CHAT | _HEARS),
    "lmstudio": Preset("http://127.0.0.1:1234/v1", key_required=False, stream_usage=False),
}


def adapted_body(call: Call, preset: Preset, provider: str) -> bytes | None:
    """The body without what the host rejects, or None when nothing needs to change
    (then the client's bytes go as they are)."""
    if call.op in ("transcriptions", "translations"):
        return None         # a form, rebuilt from call.data: no JSON to adapt
    data = call.data
    drop = preset.drop.intersection(data)
    rename = [k for k in preset.rename if k in data]
    names = (call.op == "chat" and preset.drop_message_names
             and any(isinstance(m, dict) and "name" in m for m in data.get("messages", ())))
    if not drop and not rename and not names:
        return None
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in drop}
    for old in rename:
        out[preset.rename[old]] = out.pop(old)
    if names:
        out["messages"] = [{k: v for k, v in m.items() if k != "name"} for m in data["messages"]]
    out["model"] = call.model
    log.debug("provider %s: dropped %s, renamed %s%s", provider, sorted(drop), rename,
              ", messages[].name" if names else "")
    return orjson.dumps(out)


def preset_provider(type_name: str, preset: Preset) -> type[Provider]:
    """The adapter class for one preset `type:`."""

    class Options(api.Options):
        base_url: str = preset.base_url
        api_key: str = Field(default_factory=lambda: os.environ.get(preset.key_env, "") if preset.key_env else "")
        stream_usage: bool = preset.stream_usage

    class PresetProvider(OpenAICompatibleProvider):
        secret_field = "api_key" if preset.key_required else None
        operations = preset.operations

        def request(self, call: Call) -> UpstreamRequest:
            adapted = adapted_body(call, preset, self.name)
            if adapted is None:
                return super().request(call)
            stripped = Call(call.op, adapted, orjson.loads(adapted), call.model, call.stream, call.request_id)
            return super().request(stripped)

    PresetProvider.Options = Options
    PresetProvider.__name__ = PresetProvider.__qualname__ = f"{type_name.title()}Provider"
    Options.__name__ = Options.__qualname__ = f"{type_name.title()}Options"
    return PresetProvider


PRESET_TYPES: dict[str, type[Provider]] = {name: preset_provider(name, p) for name, p in PRESETS.items()}
