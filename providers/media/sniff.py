"""What kind of image a file is, from its first bytes (never from a name or a header a client wrote)."""
from __future__ import annotations


def image_type(data: bytes) -> str | None:
    """The media type of a PNG, JPEG, WEBP or GIF file, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None
