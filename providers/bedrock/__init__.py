"""`type: bedrock`: Amazon Bedrock's Converse and ConverseStream APIs, signed
with SigV4 (no AWS SDK), streams decoded from AWS's binary event-stream."""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from providers import chat_format as cf
from providers.anthropic.answer import usage as anthropic_usage
from providers.base import Call, Native, Reply
from providers.bedrock import api, chat, errors, eventstream, native, reply
from providers.bedrock.stream import ConverseStream
from providers.connections import Answer
from providers.errors import ProviderError, UpstreamFault
from providers.http import HttpProvider, UpstreamRequest, json_object


class BedrockProvider(HttpProvider[api.Options]):
    Options = api.Options
    operations = frozenset({"chat"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self.target = api.target(options)      # the environment is read once, here
        creds = self.target.credentials
        self._secrets = tuple(s for s in (creds.secret_access_key, creds.session_token) if s)

    def extra_secrets(self) -> tuple[str, ...]:
        creds = self.target.credentials     # from the environment when the config names none
        return (*self._secrets, creds.access_key_id)

    @classmethod
    def disabled_reason(cls, options: api.Options) -> str | None:
        if not options.enabled:
            return "enabled: false"
        return api.missing(options)

    def native(self, call: Call) -> Native | None:
        """Anthropic's own request, for Anthropic's models (InvokeModel takes it as it is)."""
        n = call.native
        ok = n is not None and n.op == "messages" and n.holder in (None, self.name) and native.takes(call.model)
        return n if ok else None

    def request(self, call: Call) -> UpstreamRequest:
        if call.op != "chat":
            raise self.unsupported(call.op)
        n = self.native(call)
        if n is not None:
            body = native.body(n)
            url = api.url(self.target, call.model, call.stream, native.PATHS)
        else:
            body = chat.converse_request(call.data, self.name)
            url = api.url(self.target, call.model, call.stream)
        return UpstreamRequest(url, body, api.headers(self.target, api.wire_path(url), body, self.options.headers))

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return errors.parse_error(status, body, headers, provider=self.name, secrets=self._secrets)

    def answer(self, call: Call, body: bytes) -> Reply:
        if self.native(call) is not None:
            doc = json_object(body, self.name)
            if not isinstance(doc.get("content"), list):
                raise self.upstream.malformed("answered 200 without a 'content' list")
            return Reply(body=body, usage=anthropic_usage(doc.get("usage")), extra={"native": "messages"})
        out, usage = reply.completion(body, call.model, self.name)
        return Reply(body=out, usage=usage)

    async def chat(self, call: Call) -> Reply:
        if not call.stream or self.native(call) is None:
            return await self._exchange(call)
        resp = await self.upstream.send(self.request(call))
        if resp.status >= 300:
            raise self.error(resp.status, await self.upstream.read_error(resp), resp.headers)
        answer = Reply(content_type=b"text/event-stream", close=resp.release, extra={"native": "messages"})
        answer.chunks = self._native_stream(resp, answer)
        return answer

    async def _native_stream(self, resp: Answer, answer: Reply) -> AsyncIterator[bytes]:
        events = native.Events(answer, self.name)
        async for batch in self.events(resp):
            out = []
            for event, payload in batch:
                if event and event.endswith("Exception"):
                    raise errors.stream_exception(event, payload, provider=self.name, secrets=self._secrets)
                if event == "chunk":
                    out.append(events.sse(payload))
            if out:
                yield b"".join(out)

    def translator(self, call: Call) -> ConverseStream:
        return ConverseStream(call.model, cf.wants_usage_chunk(call.data), self.name, self._secrets)

    async def events(self, resp: Answer) -> AsyncIterator[list[tuple[str | None, bytes]]]:
        """Frames as (event or exception type, payload), one batch per read."""
        decoder = eventstream.Decoder(self.name)
        framed = False
        async for data in self.upstream.chunks(resp):
            batch = [_event(m) for m in decoder.feed(data)]
            if batch:
                framed = True
                yield batch
        if decoder.pending:
            raise UpstreamFault(f"provider '{self.name}' ended the stream inside a frame", provider=self.name)
        if not framed:
            # An empty 200 is no answer: without this the translator's closing chunks
            # (role, "stop", [DONE]) would go out as a served, empty reply, and never fail over.
            raise self.upstream.malformed("ended the stream before its first event")


def _event(m: eventstream.Message) -> tuple[str | None, bytes]:
    kind = m.headers.get(":message-type")
    if kind == "exception":
        return str(m.headers.get(":exception-type", "UnknownException")), m.payload
    if kind == "error":       # the transport's own errors carry their message in headers
        code = str(m.headers.get(":error-code", "Unknown"))
        name = code if code.endswith("Exception") else code + "Exception"
        return name, orjson.dumps({"message": str(m.headers.get(":error-message", ""))})
    event = m.headers.get(":event-type")
    return (event if isinstance(event, str) else None), m.payload
