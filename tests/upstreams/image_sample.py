"""Real, small images for the fake image upstreams (Gemini, fal, Replicate):
PNGs drawn with Pillow at the size asked for, or at an aspect ratio."""
from __future__ import annotations

import hashlib
import io

from PIL import Image

RATIO_LONG_SIDE = 96     # an image asked for by aspect ratio is this long on its long side


def png(width: int, height: int, seed: str = "") -> bytes:
    """A PNG of `width` x `height`, one colour from `seed` (each seed its own)."""
    d = hashlib.sha256(seed.encode()).digest()
    out = io.BytesIO()
    Image.new("RGB", (width, height), (d[0], d[1], d[2])).save(out, format="PNG")
    return out.getvalue()


def ratio_size(ratio: str | None) -> tuple[int, int]:
    """A size of `ratio` ("16:9"), RATIO_LONG_SIDE on its long side; square when none."""
    if not ratio or ":" not in ratio:
        return RATIO_LONG_SIDE, RATIO_LONG_SIDE
    a, _, b = ratio.partition(":")
    w, h = int(a), int(b)
    if w >= h:
        return RATIO_LONG_SIDE, round(RATIO_LONG_SIDE * h / w)
    return round(RATIO_LONG_SIDE * w / h), RATIO_LONG_SIDE
