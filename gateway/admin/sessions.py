"""The console's sign-in: an admin key, once, for a session cookie.

POST   /admin/session   {"key": "<admin key>"}: a session (8 hours), as an HttpOnly,
                        SameSite=Strict cookie; 401 (and an audit entry) for a wrong key
GET    /admin/session   who is signed in, the role and when the session ends
DELETE /admin/session   sign out: the session is forgotten by every replica

The cookie holds a random token; the store keeps only its SHA-256, with the
admin's id, so revoking or changing the key ends its sessions too. A change
made with a session cookie must carry `x-console-csrf: 1` and, when the
browser sends an Origin, come from the gateway's own origin: a page on another
site can do neither (and SameSite=Strict keeps the cookie from it already).
"""
from __future__ import annotations

import hashlib
import secrets
import time

import orjson

from gateway.admin.identity import Admin, admin_api_on, by_id, by_secret, not_signed_in, off
from gateway.asgi import Request
from gateway.errors import ApiError, bad_request
from gateway.runtime import Runtime
from gateway.store import Session, StoreDown

COOKIE = "gw_console"
SESSION_S = 8 * 3600
CSRF_HEADER = b"x-console-csrf"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_token(req: Request) -> str | None:
    raw = req.headers.get(b"cookie")
    if not raw:
        return None
    for part in raw.decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and 20 <= len(value) <= 100:
            return value
    return None


async def from_cookie(req: Request, rt: Runtime) -> tuple[Admin, Session] | None:
    """The admin of the request's session cookie, or None."""
    token = cookie_token(req)
    if token is None:
        return None
    try:
        session = await rt.store.sessions.get(token_hash(token))
    except StoreDown:
        raise _unavailable() from None
    if session is None:
        return None
    admin = by_id(session.admin, rt)
    return (admin, session) if admin is not None else None


def check_csrf(req: Request) -> None:
    """A change made with the cookie: the header, and the gateway's own origin."""
    if req.headers.get(CSRF_HEADER) != b"1":
        raise ApiError(403, "A change made with a console session needs the 'x-console-csrf: 1' header.",
                       type="permission_error", code="csrf_check_failed")
    origin = req.headers.get(b"origin")
    if origin is not None:
        host = req.headers.get(b"host", b"")
        if origin.split(b"://", 1)[-1] != host:
            raise ApiError(403, "A change made with a console session must come from the gateway's own pages.",
                           type="permission_error", code="csrf_check_failed")


def _unavailable() -> ApiError:
    return ApiError(503, "Sessions cannot be reached right now; try again shortly.", type="server_error",
                    code="store_unavailable", headers=[(b"retry-after", b"1")])


def _cookie(req: Request, value: str, max_age: int) -> tuple[bytes, bytes]:
    secure = "; Secure" if req.scope.get("scheme") == "https" else ""
    return (b"set-cookie", f"{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
            .encode())


async def sign_in(req: Request, rt: Runtime) -> Admin:
    """POST /admin/session; the admin signed in (the caller audits either way)."""
    if not admin_api_on(rt):
        raise off()
    try:
        body = orjson.loads(await req.body(4096))
    except orjson.JSONDecodeError:
        raise bad_request("Send {\"key\": \"<admin key>\"}.", param="key") from None
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key or len(key) > 512:
        raise bad_request("Send {\"key\": \"<admin key>\"}.", param="key")
    admin = by_secret(key.encode(), rt)
    if admin is None:
        raise ApiError(401, "That is not an admin key.", code="invalid_api_key")
    token = secrets.token_urlsafe(32)
    expires = time.time() + SESSION_S
    try:
        await rt.store.sessions.put(token_hash(token), Session(admin.id, admin.name, admin.role, expires))
    except StoreDown:
        raise _unavailable() from None
    await req.respond(200, orjson.dumps({"name": admin.name, "role": admin.role, "expires_at": int(expires)}),
                      [_cookie(req, token, SESSION_S)])
    return admin


async def who(req: Request, rt: Runtime) -> None:
    """GET /admin/session."""
    found = await from_cookie(req, rt)
    if found is None:
        raise not_signed_in()
    admin, session = found
    await req.respond(200, orjson.dumps({"name": admin.name, "role": admin.role,
                                         "expires_at": int(session.expires_at)}))


async def sign_out(req: Request, rt: Runtime) -> None:
    """DELETE /admin/session: forgotten, and the cookie cleared."""
    token = cookie_token(req)
    if token is not None:
        try:
            await rt.store.sessions.delete(token_hash(token))
        except StoreDown:
            raise _unavailable() from None
    await req.respond(200, b'{"signed_out":true}', [_cookie(req, "", 0)])
