"""The /v1/batches surface, as OpenAI's Batch API (and the SDK's `client.batches.*`)
expects it: create, retrieve, list, cancel, each scoped to the calling key
(another key's batch is a 404). Thin: the wire format is protocol.py, running
batches is service.py."""
from __future__ import annotations

import orjson

from gateway.asgi import Request
from gateway.batches import protocol
from gateway.batches.service import Batches
from gateway.errors import ApiError, allowing
from gateway.runtime import Runtime
from gateway.store import StoreDown


def _batches(rt: Runtime) -> Batches:
    assert rt.services.batches is not None, "the app starts the batches service before serving"
    return rt.services.batches


def _unavailable() -> ApiError:
    return ApiError(503, "Batches cannot be reached right now; try again shortly.", type="server_error",
                    code="batches_unavailable", headers=[(b"retry-after", b"1")])


async def batches_root(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    batches = _batches(rt)
    try:
        if req.method == "POST":
            asked = protocol.parse_create(await req.body(protocol.MAX_BODY))
            batch = await batches.create(key, asked)
            await req.respond(200, orjson.dumps(batch.shown()))
            return
        q = protocol.list_query(req.query())
        found, more = await batches.page(key.id, q.after, q.limit)
        await req.respond(200, orjson.dumps(protocol.list_page([await batches.shown(b) for b in found], more)))
    except StoreDown:
        raise _unavailable() from None


async def batches_path(req: Request, rt: Runtime) -> None:
    rest = req.path.split("/batches/", 1)[1]
    batch_id, _, action = rest.partition("/")
    if not action:
        allowing(req.method, req.path, ("GET",))
    elif action == "cancel":
        allowing(req.method, req.path, ("POST",))
    else:
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")
    key = rt.keys.authenticate(req.headers)
    batches = _batches(rt)
    try:
        batch = await batches.find(key.id, batch_id)
        if batch is None:
            raise protocol.not_found(batch_id)
        if action == "cancel":
            await batches.cancel(batch)
        await req.respond(200, orjson.dumps(await batches.shown(batch)))
    except StoreDown:
        raise _unavailable() from None
