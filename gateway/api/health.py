"""GET /healthz (the process is up), GET /readyz (it can serve: config
loaded, state store reachable) and GET /metrics (Prometheus text format)."""
from __future__ import annotations

import orjson

from gateway.asgi import Request
from gateway.metrics import COUNTERS
from gateway.runtime import Runtime
from gateway.store import StoreDown


async def healthz(req: Request, rt: Runtime) -> None:
    await req.respond(200, b'{"status":"ok"}')


async def readyz(req: Request, rt: Runtime) -> None:
    try:
        reachable = await rt.store.ping()
    except StoreDown:
        reachable = False
    await req.respond(200 if reachable else 503, orjson.dumps({
        "status": "ready" if reachable else "unready", "store": "reachable" if reachable else "unreachable",
        "models": len(rt.models), "providers": sorted(rt.providers), "keys": len(rt.keys)}))


async def metrics(req: Request, rt: Runtime) -> None:
    await req.respond(200, COUNTERS.render(), content_type=b"text/plain; version=0.0.4; charset=utf-8")
