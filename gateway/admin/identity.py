"""Who is calling the admin API, and what they may do.

An admin is the config's `auth.admin_key` (role `admin`) or a key with a
`role` (`viewer` or `admin`) in `auth.keys`, by the SHA-256 of the secret
sent as `Authorization: Bearer`, or by a console session made from one
(gateway/admin/sessions.py). An admin's identity is a stable id: the key's
id, or `admin_key` plus the first bytes of its digest, so a session made with
a key that was since revoked or changed stops working.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gateway.auth import digest_of_config, key_id
from gateway.errors import ApiError
from gateway.runtime import Runtime

READS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Admin:
    id: str
    name: str
    role: str       # "viewer" or "admin"

    @property
    def may_change(self) -> bool:
        return self.role == "admin"


def admin_api_on(rt: Runtime) -> bool:
    return bool(rt.config.auth.admin_key) or any(k.role for k in rt.config.auth.keys)


def off() -> ApiError:
    return ApiError(403, "The admin API is off: set auth.admin_key (e.g. from $GATEWAY_ADMIN_KEY), or give a "
                         "key a role.", type="permission_error", code="admin_disabled")


def not_signed_in() -> ApiError:
    return ApiError(401, "This path needs an admin key: 'Authorization: Bearer <admin key>', or a console "
                         "session (POST /admin/session).", code="invalid_api_key")


def by_secret(secret: bytes, rt: Runtime) -> Admin | None:
    """The admin whose key `secret` is, or None."""
    if not secret:
        return None
    given = hashlib.sha256(secret).digest()
    admin_key = rt.config.auth.admin_key
    if admin_key:
        digest = hashlib.sha256(admin_key.encode()).digest()
        if hmac.compare_digest(given, digest):
            return Admin("admin_key_" + digest[:4].hex(), "admin key", "admin")
    for k in rt.config.auth.keys:
        if k.role is not None:
            digest_k = digest_of_config(k)
            if digest_k is not None and hmac.compare_digest(given, digest_k):
                return Admin(key_id(digest_k), k.name, k.role)
    return None


def by_id(admin_id: str, rt: Runtime) -> Admin | None:
    """The admin with this id in the config serving now (None: revoked, changed, or its role taken away)."""
    admin_key = rt.config.auth.admin_key
    if admin_key and admin_id == "admin_key_" + hashlib.sha256(admin_key.encode()).digest()[:4].hex():
        return Admin(admin_id, "admin key", "admin")
    for k in rt.config.auth.keys:
        if k.role is not None:
            digest = digest_of_config(k)
            if digest is not None and key_id(digest) == admin_id:
                return Admin(admin_id, k.name, k.role)
    return None


def bearer(headers: dict[bytes, bytes]) -> bytes:
    scheme, _, secret = headers.get(b"authorization", b"").partition(b" ")
    return secret.strip() if scheme.lower() == b"bearer" else b""


def allowed(admin: Admin, method: str) -> None:
    """403 for a viewer asking to change something."""
    if method not in READS and not admin.may_change:
        raise ApiError(403, f"'{admin.name}' is a viewer: it can read the admin API, not change anything.",
                       type="permission_error", code="read_only")
