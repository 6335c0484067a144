"""The mock provider's images: real PNG, JPEG or WEBP files from a prompt, on CPU.

A gradient whose colours come from a hash of (prompt, index), so the same
request gives the same bytes and each of `n` images differs. An edit draws over
the first image it is given: that image, scaled to the size, tinted by the
prompt (where a mask is given, only its transparent part). Pure: no gateway state."""
from __future__ import annotations

import base64
import hashlib
import io
import time
from typing import Any

import orjson
from PIL import Image

from providers.base import Upload

DEFAULT_SIZE = (1024, 1024)
MOST_PIXELS = 4096 * 4096


def size_of(data: dict[str, Any]) -> tuple[int, int]:
    size = data.get("size")
    if isinstance(size, str) and "x" in size:
        w, _, h = size.partition("x")
        return int(w), int(h)
    return DEFAULT_SIZE


def _colours(prompt: str, i: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    d = hashlib.sha256(f"{prompt}\n{i}".encode()).digest()
    return (d[0], d[1], d[2]), (d[3], d[4], d[5])


def _gradient(width: int, height: int, prompt: str, i: int) -> Image.Image:
    a, b = _colours(prompt, i)
    left = Image.new("RGB", (width, height), a)
    right = Image.new("RGB", (width, height), b)
    mask = Image.linear_gradient("L").resize((width, height)).rotate(90, expand=False)
    return Image.composite(left, right, mask)


def _edited(upload: Upload, mask: Upload | None, width: int, height: int, prompt: str, i: int) -> Image.Image:
    base = Image.open(io.BytesIO(upload.data)).convert("RGB").resize((width, height))
    tint = Image.new("RGB", (width, height), _colours(prompt, i)[0])
    over = Image.blend(base, tint, 0.35)
    if mask is None:
        return over
    alpha = Image.open(io.BytesIO(mask.data)).convert("RGBA").resize((width, height)).getchannel("A")
    return Image.composite(base, over, alpha)      # opaque mask: kept; transparent: edited


def _encoded(image: Image.Image, output_format: str, background: str | None) -> bytes:
    out = io.BytesIO()
    if output_format == "png" and background == "transparent":
        image = image.convert("RGBA")
        image.putalpha(200)
    image.save(out, format={"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[output_format])
    return out.getvalue()


def answer(data: dict[str, Any], edit: bool) -> tuple[bytes, int]:
    """OpenAI's images answer for `data` (generation or edit), and how many images it holds."""
    width, height = size_of(data)
    if width * height > MOST_PIXELS:
        raise ValueError(f"{width}x{height} is more than the mock draws")
    prompt = data["prompt"]
    n = data.get("n") or 1
    fmt = data.get("output_format") or "png"
    items = []
    for i in range(n):
        if edit:
            image = _edited(data["image"][i % len(data["image"])], data.get("mask"), width, height, prompt, i)
        else:
            image = _gradient(width, height, prompt, i)
        items.append({"b64_json": base64.b64encode(_encoded(image, fmt, data.get("background"))).decode(),
                      "revised_prompt": prompt})
    doc = {"created": int(time.time()), "data": items, "background": data.get("background") or "opaque",
           "output_format": fmt, "quality": data.get("quality") or "medium", "size": f"{width}x{height}",
           "usage": {"input_tokens": len(prompt) // 4 + 1, "output_tokens": 0, "total_tokens": len(prompt) // 4 + 1,
                     "input_tokens_details": {"text_tokens": len(prompt) // 4 + 1, "image_tokens": 0}}}
    return orjson.dumps(doc), n
