"""`video_url`: an expiring download link that works without the API key,
signed with HMAC-SHA256 so it cannot be forged or stretched."""
from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


def _mac(secret: bytes, video_id: str, variant: str, expires: int) -> str:
    return hmac.new(secret, f"{video_id}\n{variant}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(public_url: str, secret: bytes, video_id: str, variant: str = "video", ttl_s: int = 3600,
               now: float | None = None, collection: str = "videos") -> str:
    """A link to `/v1/{collection}/{id}/content` (videos, or images answered as `url`): the
    signature covers the id, so a link to one thing never opens another."""
    expires = int((now if now is not None else time.time()) + ttl_s)
    query = urlencode({"variant": variant, "expires": expires, "signature": _mac(secret, video_id, variant, expires)})
    return f"{public_url.rstrip('/')}/v1/{collection}/{video_id}/content?{query}"


def verify(secret: bytes, video_id: str, variant: str, expires: str, signature: str,
           now: float | None = None) -> bool:
    """True when the signature is ours for exactly this video, variant and expiry,
    and the link has not expired."""
    # ASCII digits only: int() also takes other scripts' digits, signs, blanks and '_'
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return False
    when = int(expires)
    if when < (now if now is not None else time.time()):
        return False
    # bytes: compare_digest raises on a non-ASCII str, and a client sends any text
    return hmac.compare_digest(_mac(secret, video_id, variant, when).encode(),
                               signature.encode("utf-8", "surrogateescape"))
