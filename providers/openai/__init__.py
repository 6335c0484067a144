"""`type: openai` and `type: openai_compatible` (vLLM, llama.cpp, TGI, LM Studio ...)."""
from __future__ import annotations

from typing import AsyncIterator, Mapping

from providers.base import Call, Reply
from providers.chat_format import wants_usage_chunk
from providers.errors import ProviderError
from providers.http import HttpProvider, UpstreamRequest
from providers.openai import api, chat


class OpenAIFormat(HttpProvider):
    """Any provider whose answers are already in OpenAI's format: passed through
    untouched, with usage read from them."""

    def answer(self, call: Call, body: bytes) -> Reply:
        return Reply(body=body, usage_parser=chat.usage_of)

    def relay(self, call: Call, blocks: AsyncIterator[bytes], reply: Reply) -> AsyncIterator[bytes]:
        asked = getattr(self.options, "stream_usage", False) and not wants_usage_chunk(call.data)
        return chat.watch_usage(blocks, reply, hide=asked)

    def body(self, call: Call) -> bytes:
        """What to send: the client's bytes with the target's model, and on streams
        the request for a usage chunk."""
        body = chat.with_model(call.body, call.data, call.model)
        if call.stream and getattr(self.options, "stream_usage", False) and not wants_usage_chunk(call.data):
            body = chat.with_usage_requested(body, call.data, call.model)
        return body


class OpenAIProvider(OpenAIFormat):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat", "embeddings"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)
        self._urls = {op: api.url(options, op) for op in api.PATHS}

    def request(self, call: Call) -> UpstreamRequest:
        return UpstreamRequest(self._urls[call.op], self.body(call), self._headers)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return chat.parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)


class OpenAICompatibleProvider(OpenAIProvider):
    Options = api.CompatibleOptions
    secret_field = None       # local servers often need no key
