"""GET /v1/models and GET /v1/models/{id}: the public names a key may use."""
from __future__ import annotations

import datetime as dt

import orjson

from gateway import protocol
from gateway.asgi import Request
from gateway.errors import model_not_found
from gateway.runtime import Runtime


async def list_models(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    names = [m.name for m in rt.public_models(key)]
    if b"anthropic-version" in req.headers:     # an anthropic SDK (Claude Code's model discovery)
        await req.respond(200, _anthropic_list(names, rt.loaded_at))
        return
    await req.respond(200, protocol.model_list(names, rt.loaded_at))


def _anthropic_list(names: list[str], created: int) -> bytes:
    """Anthropic's model list: one page holding every model."""
    at = dt.datetime.fromtimestamp(created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = [{"id": n, "display_name": n, "type": "model", "created_at": at} for n in names]
    return orjson.dumps({"data": data, "has_more": False, "first_id": names[0] if names else None,
                         "last_id": names[-1] if names else None})


async def retrieve_model(req: Request, rt: Runtime) -> None:
    key = rt.keys.authenticate(req.headers)
    name = req.path.split("/models/", 1)[1]
    served = rt.models.get(name)
    if served is None or not key.may_use(name):
        raise model_not_found(name)
    await req.respond(200, orjson.dumps(protocol.model_object(name, rt.loaded_at)))
