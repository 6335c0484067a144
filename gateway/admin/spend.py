"""GET /admin/spend: what was spent, filtered and grouped.

Query: `from`, `to` (YYYY-MM-DD, UTC, inclusive; default: this month so far),
`key` (a key's id, or the name of a configured key), `model`, `provider` (exact
names), `group_by` (comma list of day, key, model, provider; default all four).
Rows are counted by key id; a key shows its current name beside its `key_id`
(a revoked key, no longer named in the config, shows its id).
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

import orjson

from gateway.admin import authorize, key_names
from gateway.asgi import Request
from gateway.errors import bad_request
from gateway.runtime import Runtime
from gateway.spend import NANO, today
from gateway.store import LEDGER_FIELDS

_DIMENSIONS = ("day", "key", "model", "provider")


async def spend_report(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    query = {k: v[-1] for k, v in parse_qs(req.scope.get("query_string", b"").decode()).items()}
    day_to = _day(query.get("to") or today(), "to")
    day_from = _day(query.get("from") or day_to[:8] + "01", "from")
    if day_from > day_to:
        raise bad_request("'from' is after 'to'.", param="from")
    group_by = [g.strip() for g in (query.get("group_by") or ",".join(_DIMENSIONS)).split(",") if g.strip()]
    unknown = [g for g in group_by if g not in _DIMENSIONS]
    if unknown:
        raise bad_request(f"group_by takes {', '.join(_DIMENSIONS)}; not {', '.join(unknown)}.", param="group_by")
    wanted = {d: query[d] for d in ("key", "model", "provider") if query.get(d)}

    names = key_names(rt)
    wanted_key = wanted.pop("key", None)
    groups: dict[tuple[str, ...], dict[str, int]] = {}
    for row in await rt.store.ledger.rows(day_from, day_to):
        if any(getattr(row, d) != v for d, v in wanted.items()):
            continue
        if wanted_key is not None and wanted_key not in (row.key, names.get(row.key)):
            continue
        totals = groups.setdefault(tuple(getattr(row, d) for d in group_by), dict.fromkeys(LEDGER_FIELDS, 0))
        for f in LEDGER_FIELDS:
            totals[f] += getattr(row, f)
    data = []
    for dims, totals in sorted(groups.items()):
        item: dict[str, object] = dict(zip(group_by, dims, strict=True))
        if "key" in item:
            item["key_id"] = item["key"]
            item["key"] = names.get(str(item["key"]), item["key"])
        item.update({f: totals[f] for f in LEDGER_FIELDS if f != "cost_nano"})
        item["cost_usd"] = totals["cost_nano"] / NANO
        data.append(item)
    total = sum(t["cost_nano"] for t in groups.values())
    await req.respond(200, orjson.dumps({"object": "spend_report", "from": day_from, "to": day_to,
                                         "group_by": group_by, "data": data, "total_cost_usd": total / NANO}))


def _day(value: str, param: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise bad_request(f"'{param}' must be a date as YYYY-MM-DD, not '{value}'.", param=param) from None
