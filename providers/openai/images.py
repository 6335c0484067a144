"""OpenAI's Images API upstream: an edit's form rebuilt for the target (its own
model name, the client's fields and files), and the usage an images answer
counts (gpt-image models count tokens: `input_tokens`, `output_tokens`)."""
from __future__ import annotations

from typing import Any

from providers.base import Upload, Usage
from providers.openai.video import multipart


def edit_form(data: dict[str, Any], model: str) -> tuple[bytes, str]:
    """(body, content type) of an edit for the upstream: several images go as `image[]`."""
    parts: list[tuple[str, Any]] = [("model", model)]
    for name, value in data.items():
        if name not in ("model", "image", "mask") and value is not None:
            parts.append((name, value))
    images: list[Upload] = data["image"]
    key = "image" if len(images) == 1 else "image[]"
    parts += [(key, (u.filename, u.media_type, u.data)) for u in images]
    mask: Upload | None = data.get("mask")
    if mask is not None:
        parts.append(("mask", (mask.filename, mask.media_type, mask.data)))
    return multipart(parts)


def has_images(doc: dict[str, Any]) -> bool:
    """Whether an images answer holds at least one image, each as `b64_json` or `url`."""
    items = doc.get("data")
    return isinstance(items, list) and bool(items) and all(
        isinstance(i, dict) and (isinstance(i.get("b64_json"), str) or isinstance(i.get("url"), str)) for i in items)


def usage_in(doc: dict[str, Any]) -> Usage | None:
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None
    tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
    return Usage(prompt_tokens=tokens_in if isinstance(tokens_in, int) else 0,
                 completion_tokens=tokens_out if isinstance(tokens_out, int) else 0)
