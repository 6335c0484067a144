"""`type: openai` and `type: openai_compatible` (vLLM, llama.cpp, TGI, LM Studio ...)."""
from __future__ import annotations

from typing import AsyncIterator, Mapping

from providers.base import Call, Reply
from providers.errors import ProviderError
from providers.http import HttpProvider, UpstreamRequest
from providers.openai import api, chat


class OpenAIFormat(HttpProvider):
    """Any provider whose answers are already in OpenAI's format: passed through
    untouched, with usage read from them."""

    def answer(self, call: Call, body: bytes) -> Reply:
        return Reply(body=body, usage_parser=chat.usage_of)

    def relay(self, blocks: AsyncIterator[bytes], reply: Reply) -> AsyncIterator[bytes]:
        return chat.watch_usage(blocks, reply)


class OpenAIProvider(OpenAIFormat):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat", "embeddings"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)
        self._urls = {op: api.url(options, op) for op in api.PATHS}

    def request(self, call: Call) -> UpstreamRequest:
        return UpstreamRequest(self._urls[call.op], chat.with_model(call.body, call.data, call.model), self._headers)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return chat.parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)


class OpenAICompatibleProvider(OpenAIProvider):
    Options = api.CompatibleOptions
    secret_field = None       # local servers often need no key
