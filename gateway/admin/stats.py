"""GET /admin/stats: the console's Overview. For the last `hour` (1-minute
buckets), `day` (15 minutes) or `month` (30 days, UTC days): requests per
second, error rate, p50/p99 latency and gateway overhead, tokens and cost per
bucket, the same per (model, provider) over the whole range, and what the
ledger says was spent today and this month. Optional `model` and `provider`
narrow the series to one model or provider.

Read from the request log's stats (store.requests.rollups), never from its
records: a few hundred small rows, whatever the traffic.
"""
from __future__ import annotations

import time

import orjson

from gateway.admin import authorize
from gateway.admin.requests import MOST_NAME, query_of, store_answers
from gateway.asgi import Request
from gateway.errors import bad_request
from gateway.runtime import Runtime
from gateway.spend import NANO, today
from gateway.store.request_stats import DAY, MINUTE, QUARTER

RANGES = {"hour": (3600, MINUTE), "day": (86_400, QUARTER), "month": (30 * 86_400, DAY)}   # span, bucket (s)


async def stats(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    query = query_of(req, ("range", "model", "provider"))
    name = query.get("range") or "hour"
    if name not in RANGES:
        raise bad_request(f"'range' takes {', '.join(RANGES)}.", param="range")
    for param in ("model", "provider"):
        if len(query.get(param, "")) > MOST_NAME:
            raise bad_request(f"'{param}' is longer than {MOST_NAME} characters.", param=param)
    model, provider = query.get("model") or None, query.get("provider") or None
    span_s, width = RANGES[name]
    now_ms = int(time.time() * 1000)
    until_ms = now_ms - now_ms % (width * 1000) + width * 1000      # the bucket under way is the last
    day = today()
    async with store_answers(rt):
        found = await rt.store.requests.stats(until_ms - span_s * 1000, until_ms, width, model, provider, now_ms)
        ledger = await rt.store.ledger.rows(day[:8] + "01", day)
    spent = [r for r in ledger if (model is None or r.model == model) and (provider is None or r.provider == provider)]
    await req.respond(200, orjson.dumps({
        "object": "stats", "range": name, "bucket_s": width, "since_ms": found.since_ms, "until_ms": found.until_ms,
        "buckets": found.buckets, "models": found.groups, "totals": found.totals,
        "spend": {"today_usd": sum(r.cost_nano for r in spent if r.day == day) / NANO,
                  "month_usd": sum(r.cost_nano for r in spent) / NANO}}))
