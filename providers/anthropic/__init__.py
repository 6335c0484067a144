"""`type: anthropic`: Claude through Anthropic's Messages API, translated to
and from OpenAI's chat format; a client that speaks Messages itself
(`/v1/messages`) is passed through natively."""
from __future__ import annotations

from collections.abc import Mapping

from providers import sse
from providers.anthropic import answer, api, chat, native
from providers.anthropic.batches import AnthropicBatches
from providers.anthropic.errors import parse_error
from providers.anthropic.stream import Translator
from providers.base import Call, Native, Reply
from providers.errors import ProviderError
from providers.http import HttpProvider, UpstreamRequest, json_object
from providers.openai.chat import with_model


class AnthropicProvider(HttpProvider[api.Options]):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)
        self._url = api.url(options)

    def batch_client(self) -> AnthropicBatches:
        return AnthropicBatches(self)     # where a config says batch: native

    def native(self, call: Call) -> Native | None:
        n = call.native
        return n if n is not None and n.op == "messages" and n.holder in (None, self.name) else None

    def request(self, call: Call) -> UpstreamRequest:
        if call.op != "chat":
            raise self.unsupported(call.op)
        n = self.native(call)
        if n is not None:
            return UpstreamRequest(self._url, with_model(n.body, n.data, call.model),
                                   native.headers(self._headers, n.headers))
        return UpstreamRequest(self._url, chat.body(call.data, call.model, self.options, self.name, call.stream),
                               self._headers)

    def answer(self, call: Call, body: bytes) -> Reply:
        if self.native(call) is not None:
            doc = json_object(body, self.name)
            if not isinstance(doc.get("content"), list):
                raise self.upstream.malformed("answered 200 without a 'content' list")
            model = doc.get("model")
            return Reply(body=body, usage=answer.usage(doc.get("usage")), extra={"native": "messages"},
                         model=model if isinstance(model, str) else None)
        out, usage = answer.translate(body, provider=self.name)
        return Reply(body=out, usage=usage)

    def translator(self, call: Call) -> Translator | None:
        if self.native(call) is not None:
            return None             # relayed as it is (`relay`)
        return Translator(call.data, call.model, provider=self.name, secret=self.options.api_key)

    async def count_tokens(self, call: Call, client_headers: dict[str, str]) -> int:
        """Anthropic's own count for a `/v1/messages/count_tokens` body (`call.native`, only
        `model` changed)."""
        n = call.native
        if n is None or n.op != "messages":
            raise self.unsupported("count_tokens")
        req = UpstreamRequest(self._url + "/count_tokens", with_model(n.body, n.data, call.model),
                              native.headers(self._headers, client_headers))
        counted = json_object(await self.roundtrip(req), self.name).get("input_tokens")
        if not isinstance(counted, int) or isinstance(counted, bool) or counted < 0:
            raise self.upstream.malformed("answered count_tokens without an 'input_tokens' count")
        return counted

    def watch(self, call: Call, reply: Reply) -> sse.Watch | None:
        reply.extra["native"] = "messages"
        return native.watch(reply)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)
