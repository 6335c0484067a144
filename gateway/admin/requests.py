"""GET /admin/requests and /admin/requests/{id}: the request log, filtered and
paged, newest first; one record with each upstream attempt, its headers, and
its prompt and answer where `logging.prompts` kept them.

Query: `key` (a key id, or a configured key's name), `model`, `provider`,
`status` (`429`, or a class: `5xx`), `since`, `until` (unix seconds or ISO
8601; `until` exclusive), `limit` (1-500, default 50), `before` (a page's
`next`). Every parameter is bounded; anything else answers 400.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import orjson

from gateway.admin import authorize, key_names
from gateway.asgi import Request
from gateway.auth import is_key_id
from gateway.errors import ApiError, bad_request
from gateway.runtime import Runtime
from gateway.spend import NANO
from gateway.store import BadCursor, RequestFilter, RequestRecord, StoreDown

PREFIX = "/admin/requests/"
MOST_PER_PAGE = 500
MOST_QUERY_BYTES = 4096
MOST_NAME = 256
_LATEST_S = 253_402_300_799          # 9999-12-31T23:59:59Z
_PARAMS = ("key", "model", "provider", "status", "since", "until", "limit", "before")
_STATUS = re.compile(r"^([1-5])(\d\d|xx)$")
_CURSOR = re.compile(r"^[0-9-]{1,64}$")


async def list_requests(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    wanted = parse_filter(query_of(req, _PARAMS), key_names(rt))
    async with store_answers(rt):
        try:
            page = await rt.store.requests.query(wanted)
        except BadCursor:
            raise bad_request("'before' takes the 'next' of an earlier page, as it was.", param="before") from None
    names = key_names(rt)
    await req.respond(200, orjson.dumps({"object": "list", "data": [shown(r, names) for r in page.records],
                                         "next": page.next, "has_more": page.next is not None}))


async def one_request(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    request_id = req.path[len(PREFIX):]
    if not 0 < len(request_id) <= 128 or not all(32 < ord(c) < 127 for c in request_id):
        raise bad_request("A request id is 1-128 printable characters (its x-request-id).", param="request_id")
    async with store_answers(rt):
        record = await rt.store.requests.get(request_id)
    if record is None:
        raise ApiError(404, f"No request '{request_id}' in the request log (never logged, or pruned).",
                       code="request_not_found")
    await req.respond(200, orjson.dumps(shown(record, key_names(rt), detail=True)))


def query_of(req: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters (the last of each name); 400 for one not in `allowed`, or a query too long."""
    raw = req.scope.get("query_string", b"")
    if len(raw) > MOST_QUERY_BYTES:
        raise bad_request(f"The query string is longer than {MOST_QUERY_BYTES} bytes.")
    query = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise bad_request(f"Unknown query parameter '{unknown[0][:64]}'; this path takes {', '.join(allowed)}.",
                          param=unknown[0][:64])
    return query


def parse_filter(query: dict[str, str], names: dict[str, str]) -> RequestFilter:
    """The filter a query asks for (`names`: key id -> name of the configured keys), or a 400."""
    key = query.get("key") or None
    if key is not None and not is_key_id(key):
        ids = [kid for kid, name in names.items() if name == key]
        if not ids:
            raise bad_request(f"'key' takes a key id (key_ and 16 hex digits) or a configured key's name; "
                              f"no key is named '{key[:64]}'.", param="key")
        key = ids[0]
    status = status_class = None
    if query.get("status"):
        m = _STATUS.match(query["status"].lower())
        if m is None:
            raise bad_request("'status' takes an HTTP status (429) or a class (4xx, 5xx).", param="status")
        if m.group(2) == "xx":
            status_class = int(m.group(1))
        else:
            status = int(query["status"])
    since, until = _time(query, "since"), _time(query, "until")
    if since is not None and until is not None and since > until:
        raise bad_request("'since' is after 'until'.", param="since")
    before = query.get("before") or None
    if before is not None and not _CURSOR.match(before):
        raise bad_request("'before' takes the 'next' of an earlier page, as it was.", param="before")
    return RequestFilter(key=key, model=_name(query, "model"), provider=_name(query, "provider"), status=status,
                         status_class=status_class, since_ms=since, until_ms=until,
                         limit=_count(query, "limit", 50, 1, MOST_PER_PAGE), before=before)


def shown(r: RequestRecord, names: dict[str, str], detail: bool = False) -> dict[str, Any]:
    """A record as the admin API shows it (`detail`: with its attempts, headers, prompt and answer)."""
    out: dict[str, Any] = {
        "object": "request", "id": r.id, "time_ms": r.at_ms, "key_id": r.key_id,
        "key": names.get(r.key_id, r.key_name), "endpoint": r.endpoint, "model": r.model, "provider": r.provider,
        "status": r.status, "error": r.error, "attempts": r.attempts, "stream": r.stream, "cache_hit": r.cache_hit,
        "latency_ms": r.latency_ms, "overhead_ms": r.overhead_ms, "tokens_in": r.tokens_in,
        "tokens_out": r.tokens_out, "cost_usd": r.cost_nano / NANO}
    if detail:
        out["attempt_log"] = r.attempt_log
        out["headers"] = r.headers
        if r.prompt is not None:
            out["prompt"] = r.prompt
        if r.answer is not None:
            out["answer"] = r.answer
    return out


@asynccontextmanager
async def store_answers(rt: Runtime) -> AsyncIterator[None]:
    """Reads of the request log: this process's records gathered so far written first, so a read sees
    the requests just made; the store's outage answered as a 503 the console can show, not a 500."""
    try:
        await rt.services.request_log.flush()
    except Exception:       # StoreDown: the records are kept for the next try; the read says the rest
        pass
    try:
        yield
    except StoreDown as e:
        raise ApiError(503, f"The state store did not answer: {e}", type="server_error",
                       code="store_unavailable") from None


def _name(query: dict[str, str], param: str) -> str | None:
    value = query.get(param) or None
    if value is not None and len(value) > MOST_NAME:
        raise bad_request(f"'{param}' is longer than {MOST_NAME} characters.", param=param)
    return value


def _count(query: dict[str, str], param: str, default: int, low: int, high: int) -> int:
    raw = query.get(param)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and low <= int(raw) <= high):
        raise bad_request(f"'{param}' takes a whole number from {low} to {high}.", param=param)
    return int(raw)


def _time(query: dict[str, str], param: str) -> int | None:
    """Unix seconds (a number) or ISO 8601 (UTC unless it says otherwise), as unix ms."""
    raw = query.get(param)
    if not raw:
        return None
    seconds: float | None = None
    if len(raw) <= 40:
        try:
            seconds = float(raw)
        except ValueError:
            try:
                at = dt.datetime.fromisoformat(raw)
                seconds = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
            except (ValueError, OverflowError, OSError):
                pass
    if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= _LATEST_S:
        raise bad_request(f"'{param}' takes unix seconds or an ISO 8601 time (2026-01-31T12:00:00Z).", param=param)
    return int(seconds * 1000)
