"""GET /healthz (the process is up), GET /readyz (it can serve: config
loaded, state store reachable) and GET /metrics (Prometheus text format).

/healthz is open; /metrics and the details of /readyz name keys, targets and
providers, so they are for operators: who counts as one is `server.metrics`."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import time

import orjson
from prometheus_client.metrics_core import GaugeMetricFamily

from gateway import __version__
from gateway.asgi import Request
from gateway.errors import ApiError
from gateway.metrics import CONTENT_TYPE, STORE_ERRORS, scrape
from gateway.runtime import Runtime
from gateway.spend import NANO, period
from gateway.store import StoreDown

_CIRCUIT = {"closed": 0, "half_open": 1, "open": 2}


async def healthz(req: Request, rt: Runtime) -> None:
    await req.respond(200, b'{"status":"ok"}')


# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its peer address.
_FORWARDED = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


async def readyz(req: Request, rt: Runtime) -> None:
    try:
        reachable = await rt.store.ping()
    except StoreDown:
        reachable = False
    status = 200 if reachable else 503
    if not _operator(req, rt):
        await req.respond(status, b'{"status":"ready"}' if reachable else b'{"status":"unready"}')
        return
    await req.respond(status, orjson.dumps({
        "status": "ready" if reachable else "unready", "store": "reachable" if reachable else "unreachable",
        "models": len(rt.models), "providers": sorted(rt.providers), "keys": len(rt.keys)}))


async def metrics(req: Request, rt: Runtime) -> None:
    _authorize_metrics(req, rt)
    body = await scrape(rt.config.state.data_dir, await gauges(rt))
    await req.respond(200, body, content_type=CONTENT_TYPE)


def _authorize_metrics(req: Request, rt: Runtime) -> None:
    access = rt.config.server.metrics
    if access.auth == "none" or (access.auth == "auto" and _local(req)):
        return
    admin_key = rt.config.auth.admin_key
    token = "" if access.auth == "admin_key" else access.token
    if _bearer(req, admin_key) or _bearer(req, token):
        return
    if not admin_key and not token:
        raise ApiError(403, "GET /metrics needs a scrape token from here: set server.metrics.token (e.g. from "
                            "$GATEWAY_METRICS_TOKEN), or server.metrics.auth: none to open it to anyone.",
                       type="permission_error", code="metrics_disabled")
    wanted = "the admin key" if access.auth == "admin_key" else "the metrics token"
    raise ApiError(401, f"GET /metrics needs {wanted}: 'Authorization: Bearer <token>'.", code="invalid_api_key")


def _operator(req: Request, rt: Runtime) -> bool:
    """The caller holds the admin key or the metrics token."""
    return _bearer(req, rt.config.auth.admin_key) or _bearer(req, rt.config.server.metrics.token)


def _bearer(req: Request, secret: str) -> bool:
    if not secret:
        return False
    scheme, _, given = req.headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(hashlib.sha256(given.strip()).digest(), hashlib.sha256(secret.encode()).digest())


def _local(req: Request) -> bool:
    """The request came over loopback from this machine, not through a proxy."""
    client = req.scope.get("client")
    if not client or any(h in req.headers for h in _FORWARDED):
        return False
    try:
        ip = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)     # "::ffff:127.0.0.1" on a dual-stack socket
    return (mapped or ip).is_loopback


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
    for key in rt.keys.all():    # budgets are counted by key id
        if key.budget is None:
            continue
        day_from, day_to = period(key.budget)
        try:
            spent = await rt.store.limits.budget_spent(f"budget:{key.id}:{day_from}:{day_to}")
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
