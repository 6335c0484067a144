"""Where Anthropic's Messages API is called, and with what headers."""
from __future__ import annotations

from pydantic import Field

from providers.batching import BatchOptions
from providers.http import HttpOptions


class Options(HttpOptions, BatchOptions):     # batch*: providers/batching.py
    base_url: str = "https://api.anthropic.com/v1"
    version: str = "2023-06-01"                         # the `anthropic-version` header
    beta: list[str] = Field(default_factory=list)        # `anthropic-beta` features, joined by commas
    default_max_tokens: int = Field(4096, ge=1)          # Anthropic requires max_tokens: when the client sends none
    structured_outputs: bool = False                     # json_schema -> output_config.format (models that support it)


def url(options: Options) -> str:
    return options.base_url.rstrip("/") + "/messages"


def headers(options: Options) -> dict[str, str]:
    h = {"content-type": "application/json", "x-api-key": options.api_key,
         "anthropic-version": options.version}
    if options.beta:
        h["anthropic-beta"] = ",".join(options.beta)
    h.update(options.headers)
    return h
