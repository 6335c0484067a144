"""Gateway keys through the admin API (admin key only):

GET    /admin/keys          every key: models, limits, budget, and this month's use
POST   /admin/keys          {"name", "models"?, "limits"?, "budget"?}: a new key; its secret is in
                            this answer only (the config keeps its SHA-256)
DELETE /admin/keys/{name}   revoke it

Creating and revoking are config edits (a new version), so every replica
honours them within a second.
"""
from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson

from gateway.admin import authorize
from gateway.admin.config import edit_document
from gateway.asgi import Request
from gateway.errors import ApiError, bad_request
from gateway.limits import budget_key
from gateway.runtime import Runtime
from gateway.spend import NANO, today
from gateway.store import StoreDown


async def keys_root(req: Request, rt: Runtime) -> None:
    await (_create(req, rt) if req.method == "POST" else _list(req, rt))


async def _list(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    day = today()
    try:
        rows = await rt.store.ledger.rows(day[:8] + "01", day)
    except StoreDown:
        rows = []
    used: dict[str, dict[str, float]] = {}
    for r in rows:
        u = used.setdefault(r.key, {"requests": 0, "tokens": 0, "cost_usd": 0.0})
        u["requests"] += r.requests
        u["tokens"] += r.prompt_tokens + r.completion_tokens
        u["cost_usd"] += r.cost_nano / NANO
    out = []
    active = {k.name for k in rt.keys.all()}
    for k in rt.config.auth.keys:
        shown: dict[str, Any] = {"name": k.name, "models": k.models, "active": k.name in active,
                                 "limits": k.limits.model_dump(exclude_none=True),
                                 "budget": k.budget.model_dump() if k.budget else None,
                                 "this_month": used.get(k.name, {"requests": 0, "tokens": 0, "cost_usd": 0.0})}
        if k.budget is not None:
            try:
                spent = await rt.store.limits.budget_spent(budget_key(k.name, k.budget))
                shown["budget"]["spent_usd"] = spent / NANO
            except StoreDown:
                pass
        out.append(shown)
    await req.respond(200, orjson.dumps({"keys": out}))


async def _create(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    try:
        body = orjson.loads(await req.body(64 * 1024))
    except orjson.JSONDecodeError:
        raise bad_request("The body must be a JSON object: {\"name\": ..., \"models\": [...], ...}.") from None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
        raise bad_request("'name' is required: the key's name, as rules and reports show it.", param="name")
    unknown = set(body) - {"name", "models", "limits", "budget"}
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    name = body["name"].strip()
    secret = "sk-gw-" + secrets.token_urlsafe(32)
    entry = {"name": name, "key_hash": "sha256:" + hashlib.sha256(secret.encode()).hexdigest(),
             **{k: body[k] for k in ("models", "limits", "budget") if k in body}}

    def add(document: dict) -> dict:
        auth = dict(document.get("auth") or {})
        keys = list(auth.get("keys") or [])
        if any(isinstance(k, dict) and k.get("name") == name for k in keys):
            raise ApiError(409, f"A key named '{name}' exists; revoke it first or pick another name.",
                           param="name", code="key_exists")
        auth["keys"] = keys + [entry]
        return {**document, "auth": auth}

    done = await edit_document(req, rt, add, f"key '{name}' created")
    await req.respond(200, orjson.dumps({"name": name, "key": secret, **done,
                                         "note": "The secret is shown this once; the gateway keeps its hash."}))


async def revoke(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    name = req.path.rsplit("/", 1)[1]

    def remove(document: dict) -> dict:
        auth = dict(document.get("auth") or {})
        keys = list(auth.get("keys") or [])
        kept = [k for k in keys if not (isinstance(k, dict) and k.get("name") == name)]
        if len(kept) == len(keys):
            raise ApiError(404, f"No key named '{name[:100]}'.", code="not_found")
        auth["keys"] = kept
        return {**document, "auth": auth}

    done = await edit_document(req, rt, remove, f"key '{name}' revoked")
    await req.respond(200, orjson.dumps({"name": name, "revoked": True, **done}))
