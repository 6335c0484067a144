"""The admin API, under /admin, for admins only (gateway/admin/identity.py)."""
from __future__ import annotations

from gateway.admin.identity import Admin, admin_api_on, allowed, bearer, by_secret, not_signed_in, off
from gateway.asgi import Request
from gateway.auth import digest_of_config, key_id
from gateway.runtime import Runtime

SCOPE_ADMIN = "gateway.admin"    # where the control app puts who is calling (a session's admin)


def authorize(req: Request, rt: Runtime) -> Admin:
    """The admin calling; 401 without one, 403 for a viewer asking to change something,
    403 when no admin key is configured at all."""
    if not admin_api_on(rt):
        raise off()
    admin = req.scope.get(SCOPE_ADMIN) or by_secret(bearer(req.headers), rt)
    if admin is None:
        raise not_signed_in()
    allowed(admin, req.method)
    return admin


def key_names(rt: Runtime) -> dict[str, str]:
    """key id -> name, for the keys configured now (a revoked key, no longer named, shows its id)."""
    out = {}
    for k in rt.config.auth.keys:
        digest = digest_of_config(k)
        if digest is not None:
            out[key_id(digest)] = k.name
    return out
