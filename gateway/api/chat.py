"""POST /v1/chat/completions and POST /v1/embeddings."""
from __future__ import annotations

from gateway import protocol
from gateway.api.routed import forward
from gateway.asgi import Request
from gateway.runtime import Runtime
from providers.base import Call


async def chat_completions(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    body = await req.body(rt.max_body)
    data, stream = protocol.chat_request(body)
    served, strategy = rt.resolve(key, data["model"], "chat")
    ticket = await rt.limiter.admit(key, served, data, body)
    await forward(req, rt, served, Call("chat", body, data, served.name, stream, req.id.decode()), strategy, ticket)


async def embeddings(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    body = await req.body(rt.max_body)
    data = protocol.embeddings_request(body)
    served, strategy = rt.resolve(key, data["model"], "embedding")
    ticket = await rt.limiter.admit(key, served, data, body)
    await forward(req, rt, served, Call("embeddings", body, data, served.name, False, req.id.decode()), strategy,
                  ticket)
