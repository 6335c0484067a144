"""Where OpenAI (and any server that speaks its API) is called, and with what headers."""
from __future__ import annotations

from pydantic import ConfigDict, Field

from gateway.config.schema import ProviderConfig

PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}


class Options(ProviderConfig):
    model_config = ConfigDict(extra="forbid")
    base_url: str = "https://api.openai.com/v1"
    api_key: str = ""
    organization: str = ""
    project: str = ""
    headers: dict[str, str] = Field(default_factory=dict)   # sent on every call
    max_connections: int = Field(256, ge=1)                  # pooled keep-alive connections
    idle_timeout_s: float = Field(300, gt=0)                 # longest silence inside a stream


class CompatibleOptions(Options):
    base_url: str = Field(min_length=1)      # no default: it is the point of this type


def url(options: Options, op: str) -> str:
    return options.base_url.rstrip("/") + PATHS[op]


def headers(options: Options) -> dict[str, str]:
    h = {"content-type": "application/json"}
    if options.api_key:
        h["authorization"] = f"Bearer {options.api_key}"
    if options.organization:
        h["openai-organization"] = options.organization
    if options.project:
        h["openai-project"] = options.project
    h.update(options.headers)
    return h
