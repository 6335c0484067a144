"""GET /v1/models and GET /v1/models/{id}: the public names a key may use."""
from __future__ import annotations

import orjson

from gateway import protocol
from gateway.asgi import Request
from gateway.errors import model_not_found
from gateway.runtime import Runtime


async def list_models(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    names = [m.name for m in rt.public_models(key)]
    await req.respond(200, protocol.model_list(names, rt.loaded_at))


async def retrieve_model(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    name = req.path.split("/models/", 1)[1]
    served = rt.models.get(name)
    if served is None or not key.may_use(name):
        raise model_not_found(name)
    await req.respond(200, orjson.dumps(protocol.model_object(name, rt.loaded_at)))
