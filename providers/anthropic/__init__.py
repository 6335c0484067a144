"""`type: anthropic`: Claude through Anthropic's Messages API, translated to
and from OpenAI's chat format."""
from __future__ import annotations

from collections.abc import Mapping

from providers.anthropic import answer, api, chat
from providers.anthropic.errors import parse_error
from providers.anthropic.stream import Translator
from providers.base import Call, Reply
from providers.errors import ProviderError
from providers.http import HttpProvider, UpstreamRequest


class AnthropicProvider(HttpProvider[api.Options]):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)
        self._url = api.url(options)

    def request(self, call: Call) -> UpstreamRequest:
        if call.op != "chat":
            raise self.unsupported(call.op)
        return UpstreamRequest(self._url, chat.body(call.data, call.model, self.options, self.name, call.stream),
                               self._headers)

    def answer(self, call: Call, body: bytes) -> Reply:
        out, usage = answer.translate(body, provider=self.name)
        return Reply(body=out, usage=usage)

    def translator(self, call: Call) -> Translator:
        return Translator(call.data, call.model, provider=self.name, secret=self.options.api_key)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)
