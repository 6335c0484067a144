"""Images answered as `response_format: "url"`: each kept in the state store's
cache (so every replica on a shared Redis serves it) for `videos.link_ttl_s`,
and given as a signed, expiring link on the gateway, as a video's `video_url`
is: `GET /v1/images/{id}/content?variant=image&expires=...&signature=...`,
which needs no API key. The link stops working when it expires or the image
leaves the cache, whichever is first."""
from __future__ import annotations

import base64
import binascii
import os
import time
from typing import Any

from gateway.asgi import Request
from gateway.errors import ApiError, bad_request
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.video.protocol import media_type_of

_KEY = "image:"
MOST_BYTES = 32 * 1024 * 1024      # one kept image, at most (gpt-image-1's largest PNGs are a few MB)


def _new_id() -> str:
    return f"img_{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


async def keep(rt: Runtime, base_url: str, items: list[dict[str, Any]], provider: str) -> None:
    """Each base64 image of an answer kept, and replaced by its link (an upstream's own URL stays)."""
    videos = rt.services.videos
    assert videos is not None, "the app starts the video service (and its link secret) before serving"
    ttl = rt.config.videos.link_ttl_s
    for item in items:
        data = item.get("b64_json")
        if not isinstance(data, str):
            continue
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(502, f"Provider '{provider}' answered an image that is not base64.",
                           type="server_error", code="upstream_malformed") from None
        if len(raw) > MOST_BYTES or media_type_of(raw) is None:
            raise ApiError(502, f"Provider '{provider}' answered an image that cannot be kept (not PNG, JPEG "
                                f"or WEBP, or over {MOST_BYTES} bytes); ask for response_format 'b64_json'.",
                           type="server_error", code="upstream_malformed")
        image_id = _new_id()
        try:
            await rt.store.cache.put(_KEY + image_id, raw, ttl)
        except StoreDown:
            raise ApiError(503, "Images cannot be kept right now; try again, or ask for response_format "
                                "'b64_json'.", type="server_error", code="store_unavailable",
                           headers=[(b"retry-after", b"1")]) from None
        del item["b64_json"]
        item["url"] = videos.image_url(base_url, image_id)


async def content(req: Request, rt: Runtime) -> None:
    """GET /v1/images/{id}/content, with the link's signature standing in for the key."""
    image_id, _, rest = req.path.split("/images/", 1)[1].partition("/")
    if rest != "content" or not image_id.startswith("img_"):
        raise ApiError(404, f"Invalid URL ({req.method} {req.path})", code="unknown_url")
    q = req.query()
    videos = rt.services.videos
    assert videos is not None
    if q.get("variant", "image") != "image":
        raise bad_request("'variant' must be 'image'.", param="variant")
    if not videos.link_ok(image_id, "image", q.get("expires", ""), q.get("signature", "")):
        raise ApiError(403, "This image link is invalid or has expired; generate the image again.",
                       type="invalid_request_error", code="invalid_signature")
    try:
        data = await rt.store.cache.get(_KEY + image_id)
    except StoreDown:
        raise ApiError(503, "Images cannot be reached right now; try again shortly.", type="server_error",
                       code="store_unavailable", headers=[(b"retry-after", b"1")]) from None
    if data is None:
        raise ApiError(404, f"Image '{image_id[:60]}' is no longer kept; generate it again.", code="not_found")
    await req.respond(200, data, [(b"cache-control", b"private, max-age=3600")],
                      content_type=(media_type_of(data) or "application/octet-stream").encode())
