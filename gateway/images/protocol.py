"""The bodies of `POST /v1/images/generations` (JSON) and `/v1/images/edits`
(multipart/form-data, as the OpenAI SDK sends it: `image` or `image[]` files,
an optional `mask`, and text fields), checked as OpenAI's Images API checks
them. Unknown fields are ignored, as OpenAI ignores them; every bad value is a
400 naming its parameter. Pure: no I/O."""
from __future__ import annotations

import re
from typing import Any

from gateway.errors import bad_request
from gateway.protocol import json_object
from gateway.video import multipart
from gateway.video.protocol import media_type_of
from providers.base import Upload

MAX_PROMPT_CHARS = 32_000
MAX_N = 10
MAX_SIDE = 4096
MAX_IMAGES = 16                           # images to edit in one request
MAX_IMAGE_BYTES = 50 * 1024 * 1024        # each, as OpenAI's gpt-image-1 takes them
MAX_BODY_BYTES = 64 * 1024 * 1024         # an edit's whole form
MAX_PARTS = 64
_MAX_FIELD_BYTES = 256 * 1024

CHOICES = {
    "quality": ("auto", "high", "medium", "low", "hd", "standard"),
    "response_format": ("b64_json", "url"),
    "background": ("auto", "transparent", "opaque"),
    "output_format": ("png", "jpeg", "webp"),
    "moderation": ("auto", "low"),
    "style": ("vivid", "natural"),
    "input_fidelity": ("high", "low"),
}
_TEXT = ("prompt", "model", "size", "user", *CHOICES)
_NUMBERS = ("n", "output_compression", "partial_images")


def generation(body: bytes) -> dict[str, Any]:
    """A generation request: its fields, checked (the body goes upstream as it is)."""
    data = json_object(body)
    _check(data)
    return data


def edit(content_type: bytes, body: bytes) -> dict[str, Any]:
    """An edit's form as one dict: text fields as strings or numbers, `image` a list of
    Uploads and `mask` an Upload or None."""
    parts = multipart.form(content_type, body, path="POST /v1/images/edits", holding="the image",
                           most_bytes=MAX_BODY_BYTES)
    if len(parts) > MAX_PARTS:
        raise bad_request(f"The form has {len(parts)} parts; at most {MAX_PARTS}.")
    data: dict[str, Any] = {"image": []}
    for part in parts:
        name = part.name
        if name in ("image", "image[]"):
            if len(data["image"]) == MAX_IMAGES:
                raise bad_request(f"At most {MAX_IMAGES} images can be edited at once.", param="image")
            data["image"].append(_upload(part, "image"))
        elif name == "mask":
            if "mask" in data:
                raise bad_request("'mask' was given more than once.", param="mask")
            data["mask"] = _upload(part, "mask")
        elif name in _TEXT or name in _NUMBERS:
            if name in data:
                raise bad_request(f"'{name}' was given more than once.", param=name)
            if len(part.data) > _MAX_FIELD_BYTES:
                raise bad_request(f"'{name}' is larger than {_MAX_FIELD_BYTES} bytes.", param=name)
            try:
                text = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request(f"'{name}' is not valid UTF-8 text.", param=name) from None
            data[name] = _number(text, name) if name in _NUMBERS else text
    if not data["image"]:
        raise bad_request("Missing required parameter: 'image' (one or more image files).", param="image")
    data.setdefault("mask", None)
    _check(data)
    return data


def _upload(part: multipart.Part, param: str) -> Upload:
    if part.filename is None:
        raise bad_request(f"'{param}' must be a file.", param=param)
    if len(part.data) > MAX_IMAGE_BYTES:
        raise bad_request(f"'{param}' is {len(part.data)} bytes; the maximum is {MAX_IMAGE_BYTES} (50 MB).",
                          param=param)
    media_type = media_type_of(part.data)
    if media_type is None:
        raise bad_request(f"'{param}' must be a PNG, JPEG or WEBP image.", param=param)
    return Upload(part.filename[:200] or param, media_type, part.data)


def _number(text: str, name: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text.strip()):
        raise bad_request(f"'{name}' must be a whole number.", param=name)
    return int(text)


def _check(data: dict[str, Any]) -> None:
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("Missing required parameter: 'prompt' (a non-empty string).", param="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise bad_request(f"'prompt' is {len(prompt)} characters; the maximum is {MAX_PROMPT_CHARS}.",
                          param="prompt")
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise bad_request("'model' must be a non-empty string.", param="model")
    n = data.get("n", 1)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N):
        raise bad_request(f"'n' must be an integer from 1 to {MAX_N}.", param="n")
    size = data.get("size")
    if size is not None and size != "auto" and size_of(size) is None:
        raise bad_request(f"'size' must be 'auto' or WIDTHxHEIGHT with sides of 16 to {MAX_SIDE} pixels, "
                          "e.g. '1024x1024'.", param="size")
    for name, allowed in CHOICES.items():
        value = data.get(name)
        if value is not None and value not in allowed:
            raise bad_request(f"Invalid value for '{name}': must be one of {', '.join(allowed)}.", param=name)
    compression = data.get("output_compression")
    if compression is not None and (isinstance(compression, bool) or not isinstance(compression, int)
                                    or not 0 <= compression <= 100):
        raise bad_request("'output_compression' must be an integer from 0 to 100.", param="output_compression")
    if data.get("stream") is True:
        raise bad_request("Streamed image generation is not supported by this gateway; send 'stream': false.",
                          param="stream")


def size_of(size: Any) -> tuple[int, int] | None:
    """(width, height) of a WIDTHxHEIGHT within the bounds, else None."""
    if not isinstance(size, str):
        return None
    m = re.fullmatch(r"([0-9]{2,4})x([0-9]{2,4})", size)
    if m is None:
        return None
    w, h = int(m[1]), int(m[2])
    return (w, h) if 16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE else None
