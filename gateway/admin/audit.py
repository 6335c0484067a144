"""GET /admin/audit?limit=&before=: the audit trail, newest first: every admin
action that changes something (who, when, what, from where, how it ended) and
every failed admin sign-in. Written by the control app (gateway/admin/control.py)."""
from __future__ import annotations

import logging
import time

import orjson

from gateway.admin import authorize
from gateway.admin.identity import Admin
from gateway.asgi import Request
from gateway.errors import ApiError, bad_request
from gateway.runtime import Runtime
from gateway.store import AuditEntry, StoreDown


async def audit_trail(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    q = req.query()
    text = q.get("limit", "100")
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= 1000):
        raise bad_request("'limit' must be an integer from 1 to 1000.", param="limit")
    before = None
    if "before" in q:
        try:
            before = float(q["before"])
        except ValueError:
            raise bad_request("'before' must be unix seconds (an entry's `at`).", param="before") from None
        if not 0 <= before <= 1e11:
            raise bad_request("'before' must be unix seconds (an entry's `at`).", param="before")
    try:
        entries = await rt.store.audit.recent(int(text), before)
    except StoreDown:
        raise ApiError(503, "The audit trail cannot be reached right now.", type="server_error",
                       code="store_unavailable") from None
    await req.respond(200, orjson.dumps({"data": [e.shown() for e in entries]}))


async def record(rt: Runtime, req: Request, admin: Admin | None, action: str, target: str, status: int) -> None:
    """One entry; a store that does not answer loses it (logged), never the action."""
    client = req.scope.get("client")
    entry = AuditEntry(time.time(), admin.name if admin else "", admin.role if admin else "", action,
                       target[:200], status, str(client[0]) if client else "")
    try:
        await rt.store.audit.add(entry)
    except StoreDown:
        logging.getLogger("gateway").warning("audit entry not kept (store down): %s %s %s", entry.actor,
                                             action, status)
