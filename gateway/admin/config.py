"""The admin API for the running config (admin key only):

GET  /admin/config               the newest version, secrets shown as "***" (YAML when the
                                 request accepts application/yaml, its version in x-config-version)
POST /admin/config/validate      check a whole document: {"valid", "errors"}
PUT  /admin/config               replace the config with a whole document
PATCH /admin/config              change it with a JSON merge patch (RFC 7386)
GET  /admin/config/versions      the last 50 versions: version, time, author, summary
POST /admin/config/rollback      {"version": N}: N's document becomes the newest version

Documents are JSON (or YAML with a YAML content type), in the config file's
shape with `${VAR}`s left as written. A "***" sent back stands for the secret
already there. An edit that does not check is refused with a 400 listing every
error with its path, and nothing changes; a good one is stored, applied here,
and applied by every replica within a second (gateway/live_config.py).
`state`, `server.host/port/workers` and `telemetry` take effect at a restart only, so edits
to them are refused. An edit that switches something off (the admin API, a
configured secret, a provider models route to, a key) needs `?confirm=disable`.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import yaml

from gateway.admin import authorize
from gateway.admin.switch_off import CONFIRM, switched_off
from gateway.admin.yaml_body import parse_yaml
from gateway.asgi import Request
from gateway.config import ConfigError
from gateway.config.edits import merge_patch, redact, restore_secrets
from gateway.errors import ApiError, bad_request
from gateway.live_config import EditConflict, LiveConfig
from gateway.runtime import Runtime
from gateway.store import StoreDown

_MAX_BODY = 4 * 1024 * 1024
_YAML_MOST_S = 2.0
_AT_RESTART = (("state",), ("server", "host"), ("server", "port"), ("server", "workers"), ("telemetry",))


def _live(rt: Runtime) -> LiveConfig:
    live = rt.services.live
    if live is None:
        raise ApiError(503, "Config edits are not available in this process yet.", type="server_error",
                       code="config_unavailable")
    return live


def _unavailable() -> ApiError:
    return ApiError(503, "The config's versions cannot be reached right now; try again shortly.",
                    type="server_error", code="store_unavailable", headers=[(b"retry-after", b"1")])


async def _document(req: Request) -> Any:
    body = await req.body(_MAX_BODY)
    content_type = req.headers.get(b"content-type", b"").decode("latin-1").lower()
    try:
        if "yaml" in content_type:
            # In a thread, with bounded work (yaml_body.py), so the event loop keeps serving.
            return await asyncio.wait_for(asyncio.to_thread(parse_yaml, body), _YAML_MOST_S)
        return orjson.loads(body)
    except TimeoutError:
        raise bad_request(f"The YAML body took over {_YAML_MOST_S:g} s to parse; send JSON or a smaller "
                          "document.") from None
    except (orjson.JSONDecodeError, yaml.YAMLError) as e:
        raise bad_request(f"The body is not valid {'YAML' if 'yaml' in content_type else 'JSON'}: {e}") from None


def _invalid(errors: list[str]) -> ApiError:
    return ApiError(400, f"The config has {len(errors)} error{'s' if len(errors) != 1 else ''}; nothing was "
                         f"changed. First: {errors[0]}", code="invalid_config", extra={"errors": errors})


async def get_config(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    try:
        version, document, _ = await _live(rt).newest()
    except StoreDown:
        raise _unavailable() from None
    if b"yaml" in req.headers.get(b"accept", b""):     # the console's editor: the document as YAML
        text = yaml.safe_dump(redact(document), sort_keys=False, allow_unicode=True, width=120)
        await req.respond(200, text.encode(), [(b"x-config-version", str(version).encode())],
                          b"application/yaml")
        return
    await req.respond(200, orjson.dumps({"version": version, "config": redact(document)}))


async def validate(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    document = await _document(req)
    if not isinstance(document, dict):
        await req.respond(200, orjson.dumps({"valid": False, "errors": ["(top): the config must be a mapping"]}))
        return
    try:
        _, old, _ = await _live(rt).newest()
    except StoreDown:
        raise _unavailable() from None
    try:
        _live(rt).check(restore_secrets(document, old))
    except ConfigError as e:
        await req.respond(200, orjson.dumps({"valid": False, "errors": e.errors}))
        return
    await req.respond(200, orjson.dumps({"valid": True, "errors": []}))


async def replace(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    document = await _document(req)
    if not isinstance(document, dict):
        raise _invalid(["(top): the config must be a mapping"])
    await _edit(req, rt, lambda old: restore_secrets(document, old))


async def patch(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    change = await _document(req)
    if not isinstance(change, dict):
        raise bad_request("A merge patch is a JSON object (RFC 7386).")
    await _edit(req, rt, lambda old: restore_secrets(merge_patch(old, change), old))


async def config_root(req: Request, rt: Runtime) -> None:
    await {"GET": get_config, "PUT": replace, "PATCH": patch}[req.method](req, rt)


async def edit_document(req: Request, rt: Runtime, make, note: str | None = None) -> dict[str, Any]:
    """Apply `make(current document) -> new document` as a new version; what it answers."""
    live = _live(rt)
    try:
        version, old, file_hash = await live.newest()
    except StoreDown:
        raise _unavailable() from None
    new = make(old)
    if not isinstance(new, dict):
        raise _invalid(["(top): the config must be a mapping"])
    restart = [".".join(path) for path in _AT_RESTART if _at(old, path) != _at(new, path)]
    if restart:
        raise bad_request(f"{', '.join(restart)} take effect only at a restart: edit the config file and "
                          "restart the gateway.", code="restart_required")
    try:
        _refuse_switching_off(req, live, old, new)
        made, said = await live.edit(new, "admin", version, old, file_hash, note)
    except ConfigError as e:
        raise _invalid(e.errors) from None
    except EditConflict:
        raise ApiError(409, "The config changed while this edit was made; read it again and retry.",
                       code="config_conflict") from None
    except StoreDown:
        raise _unavailable() from None
    return {"version": made, "summary": said}


def _refuse_switching_off(req: Request, live: LiveConfig, old: dict[str, Any], new: dict[str, Any]) -> None:
    """400 `confirmation_required` when the edit switches something off, unless confirmed."""
    if req.query().get("confirm") == CONFIRM:
        return
    checked = live.check(new)
    try:
        before = live.check(old)
    except ConfigError:
        return   # the base does not check in this environment: nothing to compare it with
    reasons = switched_off(before, checked, new)
    if reasons:
        raise ApiError(400, f"This edit would switch off {len(reasons)} thing{'s' if len(reasons) != 1 else ''}; "
                            f"nothing was changed. Send it again with ?confirm={CONFIRM} if that is meant. "
                            f"First: {reasons[0]}", code="confirmation_required", param="confirm",
                       extra={"errors": reasons})


async def _edit(req: Request, rt: Runtime, make) -> None:
    await req.respond(200, orjson.dumps(await edit_document(req, rt, make)))


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(document, dict):
            return None
        document = document.get(part)
    return document


async def versions(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    try:
        found = await rt.store.configs.versions(50)
    except StoreDown:
        raise _unavailable() from None
    await req.respond(200, orjson.dumps({"current": rt.version, "versions": [
        {"version": v.version, "at": int(v.at), "author": v.author, "summary": v.summary} for v in found]}))


async def rollback(req: Request, rt: Runtime) -> None:
    authorize(req, rt)
    body = await _document(req)
    target = body.get("version") if isinstance(body, dict) else None
    if isinstance(target, bool) or not isinstance(target, int):
        raise bad_request("Send {\"version\": N}, a version from GET /admin/config/versions.", param="version")
    try:
        found = await rt.store.configs.version(target)
    except StoreDown:
        raise _unavailable() from None
    if found is None:
        raise ApiError(404, f"Config version {target} is not kept (the last 50 are).", param="version",
                       code="not_found")
    document = found.config()
    await req.respond(200, orjson.dumps(await edit_document(req, rt, lambda old: document,
                                                            f"rolled back to version {target}")))
