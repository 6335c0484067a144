"""The span of a download an HTTP `Range` header asks for, as videos' and files' content answer it."""
from __future__ import annotations

from gateway.asgi import Headers, Request
from gateway.errors import ApiError
from gateway.video.assets import parse_range


def asked_span(req: Request, size: int, headers: Headers) -> tuple[int, int, int]:
    """(first, last, status) of what to send of `size` bytes: the range asked for (206, its
    `content-range` added to `headers`) or the whole (200); a range outside the bytes is a 416."""
    try:
        span = parse_range(req.headers.get(b"range", b"").decode("latin-1") or None, size)
    except ValueError:
        raise ApiError(416, f"The requested range is outside the file's {size} bytes.", code="range_not_satisfiable",
                       headers=[(b"content-range", f"bytes */{size}".encode())]) from None
    if span is None:
        return 0, size - 1, 200
    first, last = span
    headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
    return first, last, 206
