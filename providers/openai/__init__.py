"""`type: openai` and `type: openai_compatible` (vLLM, llama.cpp, TGI, LM Studio ...)."""
from __future__ import annotations

from providers.base import Call, Provider, Reply
from providers.http import Upstream, UpstreamRequest
from providers.openai import api, chat


class OpenAIProvider(Provider):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat", "embeddings"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self.upstream = Upstream(self.name, max_connections=options.max_connections,
                                 idle_timeout_s=options.idle_timeout_s)
        self._headers = api.headers(options)
        self._urls = {op: api.url(options, op) for op in api.PATHS}

    async def chat(self, call: Call) -> Reply:
        return await self._send(call)

    async def embeddings(self, call: Call) -> Reply:
        return await self._send(call)

    async def _send(self, call: Call) -> Reply:
        body = chat.with_model(call.body, call.data, call.model)
        resp = await self.upstream.send(UpstreamRequest(self._urls[call.op], body, self._headers))
        if resp.status >= 300:
            raw = await self.upstream.read_error(resp)
            raise chat.parse_error(resp.status, raw, resp.headers, provider=self.name,
                                   secret=self.options.api_key)
        if call.stream:
            return Reply(chunks=self.upstream.sse_blocks(resp), content_type=b"text/event-stream",
                         close=resp.release)
        return Reply(body=await self.upstream.read(resp))

    async def close(self) -> None:
        await self.upstream.close()


class OpenAICompatibleProvider(OpenAIProvider):
    Options = api.CompatibleOptions
    secret_field = None       # local servers often need no key
