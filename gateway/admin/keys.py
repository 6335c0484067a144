"""Gateway keys through the admin API (admin key only):

GET    /admin/keys          every key: id, models, limits, budget, this month's use, and its
                            limits' use this moment (`usage`)
POST   /admin/keys          {"name", "models"?, "limits"?, "budget"?}: a new key; its secret is in
                            this answer only (the config keeps its SHA-256)
DELETE /admin/keys/{ref}    revoke it: by id (`key_...`), or by name, URL-encoded if it holds `/`
PATCH  /admin/keys/{ref}    {"models"?, "limits"?, "budget"?, "role"?}: change what it may do

A key with a `role` ("viewer" or "admin") is an admin key: it signs in to the
admin API and the console, never to the API itself.

Creating and revoking are config edits (a new version), so every replica
honours them within a second. Jobs, spend and limits belong to the key's id
(gateway/auth.py), so a revoked key's name can be reused without inheriting them.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import orjson

from gateway.admin import authorize
from gateway.admin.config import edit_document
from gateway.asgi import Request
from gateway.auth import digest_of_config, is_key_id, key_id
from gateway.config import ConfigError
from gateway.config.schema import Limits
from gateway.errors import ApiError, bad_request
from gateway.limits import budget_key, limits_in_use
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
    used: dict[str, dict[str, float]] = {}    # by key id
    for r in rows:
        u = used.setdefault(r.key, {"requests": 0, "tokens": 0, "cost_usd": 0.0})
        u["requests"] += r.requests
        u["tokens"] += r.prompt_tokens + r.completion_tokens
        u["cost_usd"] += r.cost_nano / NANO
    configured = rt.config.auth.keys
    ids = [key_id(digest) if (digest := digest_of_config(k)) is not None else None for k in configured]
    live = await _in_use(rt, [(kid, k.limits) for k, kid in zip(configured, ids, strict=True) if kid is not None])
    out = []
    for k, kid in zip(configured, ids, strict=True):
        shown: dict[str, Any] = {"id": kid, "name": k.name, "models": k.models, "active": kid is not None,
                                 "limits": k.limits.model_dump(exclude_none=True),
                                 "usage": live.get(kid) if kid is not None else None,
                                 "budget": k.budget.model_dump() if k.budget else None,
                                 "this_month": used.get(kid or "", {"requests": 0, "tokens": 0, "cost_usd": 0.0}),
                                 "role": k.role}
        if k.budget is not None and kid is not None:
            try:
                spent = await rt.store.limits.budget_spent(budget_key(kid, k.budget))
                shown["budget"]["spent_usd"] = spent / NANO
            except StoreDown:
                pass
        out.append(shown)
    await req.respond(200, orjson.dumps({"keys": out}))


async def _in_use(rt: Runtime, keys: list[tuple[str, Limits]]) -> dict[str, dict[str, dict[str, int]]]:
    """Each key's use of its limits this moment, by id; none while the store does not answer
    (the list shows the limits alone then)."""
    try:
        return dict(zip([kid for kid, _ in keys], await limits_in_use(rt.store, keys), strict=True))
    except StoreDown:
        return {}


async def _create(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    try:
        body = orjson.loads(await req.body(64 * 1024))
    except orjson.JSONDecodeError:
        raise bad_request("The body must be a JSON object: {\"name\": ..., \"models\": [...], ...}.") from None
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
        raise bad_request("'name' is required: the key's name, as rules and reports show it.", param="name")
    unknown = set(body) - {"name", "models", "limits", "budget", "role"}
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.", param=sorted(unknown)[0])
    _check_role(body)
    name = body["name"].strip()
    secret = "sk-gw-" + secrets.token_urlsafe(32)
    made_id = key_id(hashlib.sha256(secret.encode()).digest())
    entry = {"name": name, "key_hash": "sha256:" + hashlib.sha256(secret.encode()).hexdigest(),
             **{k: body[k] for k in ("models", "limits", "budget", "role") if k in body and body[k] is not None}}

    def add(document: dict) -> dict:
        auth = dict(document.get("auth") or {})
        keys = list(auth.get("keys") or [])
        if any(isinstance(k, dict) and k.get("name") == name for k in keys):
            raise ApiError(409, f"A key named '{name}' exists; revoke it first or pick another name.",
                           param="name", code="key_exists")
        auth["keys"] = keys + [entry]
        return {**document, "auth": auth}

    done = await edit_document(req, rt, add, f"key '{name}' created")
    await req.respond(200, orjson.dumps({"id": made_id, "name": name, "key": secret, **done,
                                         "note": "The secret is shown this once; the gateway keeps its hash."}))


async def revoke(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    ref = _ref(req)
    gone: list[tuple[str, str | None]] = []    # (name, id) of what was removed

    def remove(document: dict) -> dict:
        return _with_key(rt, document, ref, gone, lambda entry: None)

    done = await edit_document(req, rt, remove, f"key '{ref}' revoked")
    name, kid = gone[-1]
    await req.respond(200, orjson.dumps({"id": kid, "name": name, "revoked": True, **done}))


async def edit(req: Request, rt: Runtime) -> None:
    """PATCH /admin/keys/{id or name} {"models"?, "limits"?, "budget"?, "role"?}: the fields
    given replace the key's own (`null` removes a budget or a role); its secret stays."""
    authorize(req, rt)
    ref = _ref(req)
    try:
        body = orjson.loads(await req.body(64 * 1024))
    except orjson.JSONDecodeError:
        raise bad_request("The body must be a JSON object: {\"limits\": {...}, ...}.") from None
    if not isinstance(body, dict) or not body:
        raise bad_request("Send the fields to change: models, limits, budget or role.")
    unknown = set(body) - {"models", "limits", "budget", "role"}
    if unknown:
        raise bad_request(f"Unknown or unchangeable fields: {', '.join(sorted(unknown))} (a key's name and "
                          "secret stay; revoke and create for new ones).", param=sorted(unknown)[0])
    _check_role(body)
    changed: list[tuple[str, str | None]] = []

    def change(document: dict) -> dict:
        return _with_key(rt, document, ref, changed,
                         lambda entry: {k: v for k, v in {**entry, **body}.items() if v is not None})

    done = await edit_document(req, rt, change, f"key '{ref}' changed: {', '.join(sorted(body))}")
    name, kid = changed[-1]
    await req.respond(200, orjson.dumps({"id": kid, "name": name, **done}))


async def key_path(req: Request, rt: Runtime) -> None:
    await (edit if req.method == "PATCH" else revoke)(req, rt)


def _with_key(rt: Runtime, document: dict, ref: str, found: list[tuple[str, str | None]],
              make: Callable[[dict], dict | None]) -> dict:
    """`document` with the key `ref` names (its id, else its name) replaced by `make(entry)`
    (None: removed); (name, id) of each one found appended to `found`, 404 if none."""
    auth = dict(document.get("auth") or {})
    keys = list(auth.get("keys") or [])
    ids = _ids(rt, document, len(keys))
    by_id = is_key_id(ref) and ref in ids
    out = []
    for entry, kid in zip(keys, ids, strict=True):
        if isinstance(entry, dict) and (kid == ref if by_id else entry.get("name") == ref):
            found.append((str(entry.get("name")), kid))
            entry = make(entry)
            if entry is None:
                continue
        out.append(entry)
    if not found:
        raise ApiError(404, f"No key with the id or name '{ref[:100]}'.", code="not_found")
    auth["keys"] = out
    return {**document, "auth": auth}


def _check_role(body: dict) -> None:
    role = body.get("role")
    if role is not None and role not in ("viewer", "admin"):
        raise bad_request("'role' is 'viewer' (reads the admin API) or 'admin' (changes things too); leave it "
                          "out for a client key.", param="role")


def _ref(req: Request) -> str:
    """What follows /admin/keys/, percent-decoded once: a name may hold `/` (sent as %2F)."""
    raw = req.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(b"/admin/keys/"):
        return unquote(raw[len(b"/admin/keys/"):].split(b"?", 1)[0].decode("latin-1"))
    return req.path[len("/admin/keys/"):]


def _ids(rt: Runtime, document: dict, count: int) -> list[str | None]:
    """Each listed key's id, in the document's order (None for a key that is off)."""
    live = rt.services.live
    try:
        if live is None:
            raise ConfigError([])
        resolved = live.check(document).config.auth.keys
    except ConfigError:
        return [None] * count     # the base does not check here: revoke by name only
    out: list[str | None] = []
    for k in resolved:
        digest = digest_of_config(k)
        out.append(key_id(digest) if digest is not None else None)
    return out if len(out) == count else [None] * count
