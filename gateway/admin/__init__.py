"""The admin API, under /admin, for the admin key only."""
from __future__ import annotations

import hashlib
import hmac

from gateway.asgi import Request
from gateway.auth import digest_of_config, key_id
from gateway.errors import ApiError
from gateway.runtime import Runtime


def authorize(req: Request, rt: Runtime) -> None:
    """401 without the admin key; 403 when no admin key is configured at all."""
    admin = rt.config.auth.admin_key
    if not admin:
        raise ApiError(403, "The admin API is off: set auth.admin_key (e.g. from $GATEWAY_ADMIN_KEY).",
                       type="permission_error", code="admin_disabled")
    raw = req.headers.get(b"authorization", b"")
    scheme, _, secret = raw.partition(b" ")
    given = hashlib.sha256(secret.strip()).digest() if scheme.lower() == b"bearer" else b""
    if not hmac.compare_digest(given, hashlib.sha256(admin.encode()).digest()):
        raise ApiError(401, "This path needs the admin key: 'Authorization: Bearer <admin key>'.",
                       code="invalid_api_key")


def key_names(rt: Runtime) -> dict[str, str]:
    """key id -> name, for the keys configured now (a revoked key, no longer named, shows its id)."""
    out = {}
    for k in rt.config.auth.keys:
        digest = digest_of_config(k)
        if digest is not None:
            out[key_id(digest)] = k.name
    return out
