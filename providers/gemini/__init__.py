"""`type: gemini`: Google's Generative Language API (Gemini), chat and embeddings."""
from __future__ import annotations

from collections.abc import Mapping

import orjson

from providers.base import Call, Reply
from providers.errors import ProviderError
from providers.gemini import api, chat, embeddings
from providers.gemini.answer import completion
from providers.gemini.errors import parse_error
from providers.gemini.stream import GeminiStream
from providers.http import HttpProvider, UpstreamRequest, json_object


class GeminiProvider(HttpProvider[api.Options]):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat", "embeddings"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)

    def request(self, call: Call) -> UpstreamRequest:
        o = self.options
        if call.op == "embeddings":
            return UpstreamRequest(api.url(o, call.model, embeddings.method(call.data)),
                                   embeddings.request_body(call.data, call.model), self._headers)
        method = "streamGenerateContent" if call.stream else "generateContent"
        return UpstreamRequest(api.url(o, call.model, method, stream=call.stream),
                               chat.generate_body(call.data), self._headers)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)

    def answer(self, call: Call, body: bytes) -> Reply:
        try:
            if call.op == "embeddings":
                out, usage = embeddings.answer(call.data, body, call.model)
            else:
                out, usage = completion(body, call.model,
                                        single_call=call.data.get("parallel_tool_calls") is False)
        except ProviderError as e:
            e.provider = e.provider or self.name
            raise
        return Reply(body=out, usage=usage)

    def translator(self, call: Call) -> GeminiStream:
        return GeminiStream(call, provider=self.name, secret=self.options.api_key)

    async def count_tokens(self, call: Call, client_headers: dict[str, str]) -> int:
        """Gemini's own count (`countTokens`) for the chat form of a request: its
        contents, system instruction and tools, as generateContent would get them."""
        request = {"model": api.resource(call.model), **orjson.loads(chat.generate_body(call.data))}
        request.pop("generationConfig", None)      # countTokens counts the input only
        req = UpstreamRequest(api.url(self.options, call.model, "countTokens"),
                              orjson.dumps({"generateContentRequest": request}), self._headers)
        counted = json_object(await self.roundtrip(req), self.name).get("totalTokens")
        if not isinstance(counted, int) or isinstance(counted, bool) or counted < 0:
            raise self.upstream.malformed("answered countTokens without a 'totalTokens' count")
        return counted
