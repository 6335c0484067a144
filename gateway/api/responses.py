"""OpenAI's Responses API, on every chat model.

`POST /v1/responses` is translated to the chat format every provider adapter
speaks (gateway/responses/translate.py), routed like any chat request, and
its answer translated back: a `response` object, or the typed event stream
(gateway/responses/events.py). With `store` (the default, as OpenAI), the
request's input items and the answer are kept in the state store for
`responses.keep_days`, owned by the key's id: `previous_response_id` rebuilds
the conversation from them, and `GET` / `DELETE /v1/responses/{id}` and
`GET /v1/responses/{id}/input_items` read them. Another key's id is a 404.

Providers that speak the Responses API themselves (OpenAI; Azure's v1 API)
get the client's body with only `model` changed, and their answer goes back
untouched (`providers.base.Native`). Such an answer is kept too, under the
upstream's id; a later `previous_response_id` naming it goes natively to the
same provider (which holds the conversation), or, translated, anywhere else.
"""
from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import parse_qs

import orjson

from gateway import protocol
from gateway.asgi import Request
from gateway.auth import Key
from gateway.errors import ApiError, allowing, bad_request
from gateway.exchange import AnswerDialect, Exchange, Inbound, Translation
from gateway.responses import answer, translate
from gateway.responses.events import StreamTranslator
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.store.responses import ResponseRecord
from providers.base import Native, Reply

log = logging.getLogger("gateway")


class ResponsesApi(AnswerDialect):
    """POST /v1/responses"""
    kind = "chat"
    op = "chat"
    endpoint = "responses"
    cacheable = False      # every answer is a new response with an id of its own

    def parse(self, body: bytes) -> Inbound:
        data = protocol.json_object(body)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("You must provide a model parameter (a non-empty string).", param="model")
        stream = data.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise bad_request("Invalid type for 'stream': expected a boolean.", param="stream", code="invalid_type")
        if data.get("background") is True:
            raise bad_request("Background responses are not supported by this gateway; leave 'background' unset.",
                              param="background")
        inbound = Inbound(model, data, stream is True)
        inbound.prepare = _Preparing(inbound, data, body)
        return inbound


class _Preparing:
    """Once the model is known: the conversation so far, the chat request, and the answer's translator."""
    __slots__ = ("inbound", "request", "body")

    def __init__(self, inbound: Inbound, request: dict[str, Any], body: bytes) -> None:
        self.inbound, self.request, self.body = inbound, request, body

    async def __call__(self, x: Exchange) -> None:
        request, rt = self.request, x.rt
        assert x.key is not None
        previous = request.get("previous_response_id")
        history: list[dict[str, Any]] = []
        holder = None
        if previous is not None:
            if not isinstance(previous, str) or not previous:
                raise bad_request("'previous_response_id' must be a response id.", param="previous_response_id")
            history, holder = await conversation(rt, x.key, previous)
        chat = translate.to_chat(request, history)
        chat["model"] = request["model"]
        self.inbound.data = chat
        self.inbound.send = orjson.dumps(chat)
        if previous is None or holder is not None:     # else no upstream knows the conversation by that id
            self.inbound.native = Native("responses", self.body, request, holder)
        self.inbound.answer = ResponseAnswer(request)


class ResponseAnswer(Translation):
    """The chat answer as a `response`, kept in the store when `store` is not false."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.id = answer.new_id("resp_")
        self.created_at = int(time.time())
        self.events: StreamTranslator | None = None
        self.relayed = 0          # native stream events passed on: the next one's sequence number

    async def whole(self, x: Exchange, reply: Reply) -> bytes:
        if reply.extra.get("native") == "responses":
            await self._keep(x, reply.extra["response"], native=True)
            return reply.body
        response = answer.response_from_chat(orjson.loads(reply.body), self.request, response_id=self.id,
                                                created_at=self.created_at, model=x.model)
        await self._keep(x, response)
        return orjson.dumps(response)

    async def stream(self, x: Exchange, reply: Reply, first: bytes) -> AsyncGenerator[bytes, None]:
        assert reply.chunks is not None
        if reply.extra.get("native") == "responses":
            self.relayed = first.count(b"data:")
            yield first
            async for chunk in reply.chunks:
                self.relayed += chunk.count(b"data:")
                yield chunk
            if "response" in reply.extra:
                await self._keep(x, reply.extra["response"], native=True)
            return
        self.events = events = StreamTranslator(self.request, response_id=self.id, created_at=self.created_at,
                                                model=x.model)
        try:
            yield events.start() + events.feed(first)
            async for chunk in reply.chunks:
                out = events.feed(chunk)
                if out:
                    yield out
        except ValueError:      # an event that is not JSON, past the first: the stream ends failed, not cut
            log.warning("response %s: the upstream stream sent an event that is not JSON", self.id)
            yield events.fail("The upstream sent a malformed event.", "server_error", "upstream_malformed")
            return
        closing = events.finish()
        await self._keep(x, events.response)     # before the last event: a client reading on finds it stored
        yield closing

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        if self.events is not None:
            return self.events.fail(message, type, code)
        # A native stream broke: OpenAI's own `error` event, numbered after what was relayed.
        return b"event: error\ndata: " + orjson.dumps({
            "type": "error", "code": code, "message": message, "param": None,
            "sequence_number": self.relayed}) + b"\n\n"

    async def _keep(self, x: Exchange, response: dict[str, Any], *, native: bool = False) -> None:
        if self.request.get("store") is False:
            return
        assert x.key is not None
        response_id = response.get("id") if native else self.id
        if not isinstance(response_id, str) or not response_id:
            return
        record = ResponseRecord(response_id, x.key.id, self.created_at, orjson.dumps({
            "response": response, "input": translate.input_items(self.request),
            "previous": self.request.get("previous_response_id"),
            # the provider that keeps this conversation upstream too (it stored its answer)
            "holder": x.provider if native else None}))
        try:
            await x.rt.store.responses.put(record, x.rt.config.responses.keep_days * 86400)
        except StoreDown as e:
            log.warning("response %s was answered but not stored (the state store is down: %s)", self.id, e)


# -- stored responses -------------------------------------------------------------------

async def _stored(rt: Runtime, key: Key, response_id: str) -> dict[str, Any] | None:
    """The key's own stored response document, or None (another key's is none too)."""
    try:
        record = await rt.store.responses.get(response_id)
    except StoreDown:
        raise ApiError(503, "Stored responses are unavailable for a moment (the state store is down); "
                            "try again shortly.", type="server_error", code="store_unavailable",
                       headers=[(b"retry-after", b"1")]) from None
    if record is None or record.owner != key.id:
        return None
    doc: dict[str, Any] = orjson.loads(record.data)
    return doc


async def conversation(rt: Runtime, key: Key, response_id: str) -> tuple[list[dict[str, Any]], str | None]:
    """The items of the conversation up to and including `response_id`'s answer,
    oldest first; and the provider holding it upstream, if its last answer was native."""
    turns: list[list[dict[str, Any]]] = []
    holder = None
    at: str | None = response_id
    while at is not None:
        if len(turns) >= rt.config.responses.max_chain:
            raise bad_request(f"The conversation behind '{response_id}' is longer than "
                              f"{rt.config.responses.max_chain} responses; start a new one.",
                              param="previous_response_id")
        doc = await _stored(rt, key, at)
        if doc is None:
            raise bad_request(f"Previous response with id '{at}' not found.", param="previous_response_id",
                              code="previous_response_not_found")
        if not turns:
            holder = doc.get("holder")
        turns.append([*doc["input"], *doc["response"]["output"]])
        at = doc.get("previous")
    return [item for turn in reversed(turns) for item in turn], holder


def _not_found(response_id: str) -> ApiError:
    return ApiError(404, f"Response with id '{response_id}' not found.", param="response_id", code="not_found")


async def response_path(req: Request, rt: Runtime) -> None:
    """GET and DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items,
    POST /v1/responses/{id}/cancel and POST /v1/responses/input_tokens."""
    rest = req.path.split("/responses/", 1)[1]
    if rest == "input_tokens" and req.method == "POST":
        await _input_tokens(req, rt)
        return
    key = rt.keys.authenticate(req.headers)
    response_id, _, tail = rest.partition("/")
    if not response_id or "/" in tail or tail not in ("", "input_items", "cancel"):
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")
    allowed = {"": ("GET", "DELETE"), "input_items": ("GET",), "cancel": ("POST",)}[tail]
    allowing(req.method, req.path, allowed)
    doc = await _stored(rt, key, response_id)
    if doc is None:
        raise _not_found(response_id)
    if tail == "cancel":
        raise bad_request("Only background responses can be cancelled, and this gateway runs none.",
                          param="response_id")
    if tail == "input_items":
        await req.respond(200, orjson.dumps(_page(doc["input"], _query(req))))
    elif req.method == "GET":
        await req.respond(200, orjson.dumps(doc["response"]))
    else:
        try:
            await rt.store.responses.delete(response_id)
        except StoreDown:
            raise ApiError(503, "The state store is down; try again shortly.", type="server_error",
                           code="store_unavailable", headers=[(b"retry-after", b"1")]) from None
        await req.respond(200, orjson.dumps({"id": response_id, "object": "response", "deleted": True}))


def _query(req: Request) -> dict[str, str]:
    try:
        raw = req.scope.get("query_string", b"").decode()
    except UnicodeDecodeError:
        raise bad_request("The query string is not valid UTF-8.") from None
    return {k: v[-1] for k, v in parse_qs(raw).items()}


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """A page of input items as OpenAI lists them: `order` desc (default) or asc,
    `limit` 1-100 (default 20), `after` / `before` an item id."""
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be 'asc' or 'desc'.", param="order")
    limit_text = query.get("limit", "20")
    if not (limit_text.isascii() and limit_text.isdigit()) or not 1 <= int(limit_text) <= 100:
        raise bad_request("'limit' must be an integer from 1 to 100.", param="limit")
    ordered = items if order == "asc" else items[::-1]
    ids = [item.get("id") for item in ordered]
    for cursor in ("after", "before"):
        if cursor in query and query[cursor] not in ids:
            raise bad_request(f"No input item with id '{query[cursor]}' in this response.", param=cursor)
    start = ids.index(query["after"]) + 1 if "after" in query else 0
    end = ids.index(query["before"]) if "before" in query else len(ordered)
    window = ordered[start:end]
    data = window[:int(limit_text)]
    return {"object": "list", "data": data, "first_id": data[0].get("id") if data else None,
            "last_id": data[-1].get("id") if data else None, "has_more": len(window) > len(data)}


async def _input_tokens(req: Request, rt: Runtime) -> None:
    """POST /v1/responses/input_tokens: the gateway's estimate of the input's tokens
    (the chat request it would send, at ~4 bytes a token, as limits count it)."""
    key = rt.keys.authenticate(req.headers)
    body = await req.body(rt.max_body)
    if len(body) >= protocol.ESTIMATE_FROM:
        await protocol.check_parse_work(body, rt.max_parse_ms)
    data = protocol.json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("You must provide a model parameter (a non-empty string).", param="model")
    rt.resolve(key, model, "chat")           # a model the key may not use is refused as it would be
    previous = data.get("previous_response_id")
    history = (await conversation(rt, key, previous))[0] if isinstance(previous, str) and previous else []
    chat = translate.to_chat({**data, "input": data.get("input", [])}, history)
    await req.respond(200, orjson.dumps({"object": "response.input_tokens",
                                         "input_tokens": len(orjson.dumps(chat["messages"])) // 4}))


RESPONSES = ResponsesApi()
