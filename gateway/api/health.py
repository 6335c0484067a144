"""GET /healthz (the process is up) and GET /readyz (it can serve)."""
from __future__ import annotations

import orjson

from gateway.asgi import Request
from gateway.runtime import Runtime


async def healthz(req: Request, rt: Runtime) -> None:
    await req.respond(200, b'{"status":"ok"}')


async def readyz(req: Request, rt: Runtime) -> None:
    await req.respond(200, orjson.dumps({
        "status": "ready", "models": len(rt.models), "providers": sorted(rt.providers),
        "keys": len(rt.keys)}))
