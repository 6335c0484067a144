"""GET /healthz (the process is up), GET /readyz (it can serve: config
loaded, state store reachable) and GET /metrics (Prometheus text format)."""
from __future__ import annotations

import asyncio
import time

import orjson
from prometheus_client.metrics_core import GaugeMetricFamily

from gateway import __version__
from gateway.asgi import Request
from gateway.metrics import CONTENT_TYPE, STORE_ERRORS, scrape
from gateway.runtime import Runtime
from gateway.spend import NANO, period
from gateway.store import StoreDown

_CIRCUIT = {"closed": 0, "half_open": 1, "open": 2}


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
    body = await scrape(rt.config.state.data_dir, await gauges(rt))
    await req.respond(200, body, content_type=CONTENT_TYPE)


async def gauges(rt: Runtime) -> list[GaugeMetricFamily]:
    """What is true now, read from this process's runtime and the shared store.
    A store call that fails leaves its series out and counts a store error."""
    now = asyncio.get_running_loop().time()
    circuit = GaugeMetricFamily("gateway_circuit_state", "Each target's circuit: 0 closed, 1 half-open, 2 open.",
                                labels=("target",))
    busy = GaugeMetricFamily("gateway_target_in_flight", "Requests this process has in flight to each target.",
                             labels=("target",))
    for target_id, stats in sorted(rt.book.items()):
        circuit.add_metric((target_id,), _CIRCUIT[stats.breaker.state(now)])
        busy.add_metric((target_id,), stats.in_flight)

    depth = GaugeMetricFamily("gateway_video_queue_depth", "Video jobs queued or running, per provider.",
                              labels=("provider",))
    oldest = GaugeMetricFamily("gateway_video_oldest_job_age_seconds",
                               "Age of the oldest job in each provider's video queue (0 when empty).",
                               labels=("provider",))
    workers = GaugeMetricFamily("gateway_video_workers", "Live `gateway worker` processes per provider.",
                                labels=("provider",))
    video_providers = sorted({t.provider.name for m in rt.models.values() if m.kind == "video" for t in m.targets})
    wall = time.time()
    for provider in video_providers:
        try:
            queued, first, live = (await rt.store.jobs.queue_depth(provider),
                                   await rt.store.jobs.queue_oldest(provider), await rt.store.workers.live(provider))
        except StoreDown:
            STORE_ERRORS.inc()
            continue
        depth.add_metric((provider,), queued)
        oldest.add_metric((provider,), 0 if first is None else max(0.0, wall - first))
        if not rt.providers[provider].runs_in(embedded=not rt.config.state.redis_url):
            workers.add_metric((provider,), len(live))     # only where jobs wait for `gateway worker` processes

    budget = GaugeMetricFamily("gateway_budget_used_ratio",
                               "Each key's spend in its budget's current period / the budget.", labels=("key",))
    for key in rt.config.auth.keys:
        if key.budget is None:
            continue
        day_from, day_to = period(key.budget)
        try:
            spent = await rt.store.limits.budget_spent(f"budget:{key.name}:{day_from}:{day_to}")
        except StoreDown:
            STORE_ERRORS.inc()
            continue
        limit = key.budget.usd * NANO
        budget.add_metric((key.name,), spent / limit if limit > 0 else float(spent > 0))

    version = GaugeMetricFamily("gateway_config_version", "The config version this process serves.",
                                getattr(rt, "version", 1))
    build = GaugeMetricFamily("gateway_build_info", "The gateway's version (always 1).", labels=("version",))
    build.add_metric((__version__,), 1)
    return [circuit, busy, depth, oldest, workers, budget, version, build]
