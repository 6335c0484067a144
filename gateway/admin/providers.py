"""GET /admin/providers: every configured provider, whether it is on, and how
each of its targets is doing in this process: circuit, average latency,
requests in flight, error rate (a moving average over its recent attempts,
each weighing 0.2), the last failure."""
from __future__ import annotations

import asyncio
import time

import orjson

from gateway.admin import authorize
from gateway.asgi import Request
from gateway.runtime import Runtime


async def providers(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    now = asyncio.get_running_loop().time()
    targets: dict[str, list[dict]] = {}
    for target_id, stats in rt.book.items():
        b = stats.breaker
        targets.setdefault(target_id.split("/", 1)[0], []).append({
            "target": target_id, "circuit": b.state(now), "consecutive_failures": b.failures,
            "retry_in_s": round(b.retry_in(now), 3),
            "latency_ms": None if stats.latency_s is None else round(stats.latency_s * 1000, 3),
            "in_flight": stats.in_flight, "error_rate": round(stats.error_rate, 4), "last_error": stats.last_error,
            "last_error_ago_s": None if stats.last_error_at is None else round(time.time() - stats.last_error_at, 1)})
    out = []
    for p in rt.config.providers:
        disabled = p.name not in rt.providers
        out.append({"name": p.name, "type": p.type, "enabled": not disabled,
                    "disabled_because": _why(rt, p.name) if disabled else None,
                    "limits": p.limits.model_dump(exclude_none=True) if p.limits else None,
                    "targets": sorted(targets.get(p.name, []), key=lambda t: t["target"])})
    await req.respond(200, orjson.dumps({"version": rt.version, "providers": out}))


def _why(rt: Runtime, name: str) -> str:
    return rt.disabled.get(name, "disabled")
