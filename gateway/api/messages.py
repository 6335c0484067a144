"""Anthropic's Messages API, on every chat model: what Claude Code and the
anthropic SDKs call (`POST /v1/messages`, `POST /v1/messages/count_tokens`).

`type: anthropic` targets get the client's body natively, with only `model`
changed and the client's `anthropic-version` / `anthropic-beta` headers
kept; their answer comes back untouched. Every other backend gets the request
translated to chat (gateway/messages/translate.py) and its answer translated
back, whole or as Anthropic's event stream (gateway/messages/events.py).
Errors on these paths are in Anthropic's envelope, with Anthropic's statuses
(an overloaded upstream is a 529).
"""
from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway import protocol
from gateway.asgi import Request
from gateway.errors import ApiError
from gateway.exchange import PROVIDER, AnswerDialect, Exchange, Inbound, Translation
from gateway.messages import translate
from gateway.messages.events import StreamTranslator
from gateway.runtime import Runtime
from providers.base import Call, Native, Reply
from providers.errors import ProviderError

log = logging.getLogger("gateway")

# Anthropic's error type for a status (and a few of the gateway's own error types).
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
          404: "not_found_error", 405: "invalid_request_error", 408: "timeout_error", 413: "request_too_large",
          429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error",
          529: "overloaded_error"}
_BY_TYPE = {"insufficient_quota": "billing_error"}
# Headers of Anthropic's API that a native upstream should see as the client sent them.
_FORWARDED = (b"anthropic-version", b"anthropic-beta")


def _overloaded(err: ApiError) -> bool:
    """The gateway has no capacity (503), or the upstream said it is overloaded (503, 529)."""
    return err.status == 503 or (err.status >= 500 and err.upstream_status in (503, 529))


def error_type(err: ApiError) -> str:
    if _overloaded(err):
        return "overloaded_error"
    return _BY_TYPE.get(err.type) or _TYPES.get(err.status) or ("api_error" if err.status >= 500
                                                                 else "invalid_request_error")


class MessagesApi(AnswerDialect):
    """POST /v1/messages"""
    kind = "chat"
    op = "chat"
    endpoint = "messages"
    cacheable = False      # a cached chat answer would need translating too; not yet

    def error(self, err: ApiError) -> bytes:
        return translate.error_body(error_type(err), err.message)

    def status_of(self, err: ApiError) -> int:
        return 529 if _overloaded(err) else err.status

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        return _error_event("api_error", message)

    def parse(self, body: bytes) -> Inbound:
        data = protocol.json_object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "model: Field required (a non-empty string).")
        stream = data.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise ApiError(400, "stream: Input should be a valid boolean.")
        inbound = Inbound(model, data, stream is True)
        inbound.prepare = _Preparing(inbound, data, body)
        return inbound


class _Preparing:
    """Once the key and model are known: the chat request, and the answer's translator."""
    __slots__ = ("inbound", "request", "body")

    def __init__(self, inbound: Inbound, request: dict[str, Any], body: bytes) -> None:
        self.inbound, self.request, self.body = inbound, request, body

    async def __call__(self, x: Exchange) -> None:
        try:
            chat = translate.to_chat(self.request)
        except translate.MessagesError as e:
            raise ApiError(e.status, e.message) from None
        chat["model"] = self.request["model"]
        send = orjson.dumps(chat)
        self.inbound.data = chat
        self.inbound.send = send
        headers = {name.decode(): value.decode("latin-1") for name in _FORWARDED
                   if (value := x.req.headers.get(name)) is not None}
        self.inbound.native = Native("messages", self.body, self.request, headers=headers)
        self.inbound.answer = MessageAnswer(len(send) // 4)


class MessageAnswer(Translation):
    """The chat answer as an Anthropic message (or a native answer, as it came)."""

    def __init__(self, input_estimate: int) -> None:
        self.id = translate.new_id("msg_")
        self.input_estimate = input_estimate
        self.events: StreamTranslator | None = None

    async def whole(self, x: Exchange, reply: Reply) -> bytes:
        if reply.extra.get("native") == "messages":
            return reply.body
        return orjson.dumps(translate.message_from_chat(orjson.loads(reply.body), message_id=self.id, model=x.model))

    async def stream(self, x: Exchange, reply: Reply, first: bytes) -> AsyncGenerator[bytes, None]:
        assert reply.chunks is not None
        if reply.extra.get("native") == "messages":
            yield first
            async for chunk in reply.chunks:
                yield chunk
            return
        self.events = events = StreamTranslator(message_id=self.id, model=x.model,
                                                input_tokens_estimate=self.input_estimate)
        try:
            yield events.start() + events.feed(first)
            async for chunk in reply.chunks:
                out = events.feed(chunk)
                if out:
                    yield out
        except ValueError:      # an event that is not JSON, past the first: the stream ends with an error event
            log.warning("message %s: the upstream stream sent an event that is not JSON", self.id)
            yield events.fail("api_error", "The upstream sent a malformed event.")
            return
        yield events.finish()

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        if self.events is not None:
            return self.events.fail(_stream_error_type(type, code), message)
        return _error_event(_stream_error_type(type, code), message)


def _stream_error_type(type: str, code: str | None) -> str:
    if code == "deadline_exceeded":
        return "timeout_error"
    if type in ("rate_limit_error", "rate_limit_exceeded", "requests", "tokens"):
        return "rate_limit_error"
    return "overloaded_error" if code == "overloaded" else "api_error"


def _error_event(type: str, message: str) -> bytes:
    return b"event: error\ndata: " + translate.error_body(type, message) + b"\n\n"


async def count_tokens(req: Request, rt: Runtime) -> None:
    """POST /v1/messages/count_tokens: `{"input_tokens": N}`, counted by the model's first
    target that counts (Anthropic), else the gateway's estimate (the chat request it would
    send, at ~4 bytes a token, as limits count it)."""
    try:
        key = rt.keys.authenticate(req.headers)
        body = await req.body(rt.max_body)
        if len(body) >= protocol.ESTIMATE_FROM:
            await protocol.check_parse_work(body, rt.max_parse_ms)
        data = protocol.json_object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "model: Field required (a non-empty string).")
        served, strategy = rt.resolve(key, model, "chat")   # a model the key may not use is refused as it would be
        try:
            tokens = translate.count_tokens_estimate(data)
            chat = translate.to_chat({**data, "max_tokens": 1})     # what a chat provider would count
        except translate.MessagesError as e:
            raise ApiError(e.status, e.message) from None
    except ApiError as e:
        await req.respond(MESSAGES.status_of(e), MESSAGES.error(e), e.headers)
        return
    headers: list[tuple[bytes, bytes]] = []
    for target in served.plan(strategy):
        counter = getattr(target.provider, "count_tokens", None)
        if counter is None:
            continue
        client_headers = {name.decode(): value.decode("latin-1") for name in _FORWARDED
                          if (value := req.headers.get(name)) is not None}
        call = Call("chat", b"", chat, target.model, native=Native("messages", body, data))
        try:
            tokens = await counter(call, client_headers)
            headers = [(PROVIDER, target.provider.name.encode())]     # counted by it, not estimated
        except ProviderError as e:      # the estimate stands in; the count is advisory
            log.warning("count_tokens via %s failed: %s", target.id, e.scrubbed(target.provider.secrets).message)
        break
    await req.respond(200, orjson.dumps({"input_tokens": tokens}), headers)


MESSAGES = MessagesApi()
