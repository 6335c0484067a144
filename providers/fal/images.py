"""OpenAI's Images API on fal.ai's queue, as pure functions (the queue's
requests, statuses and errors are the video path's: translate.py).

Wire format, as relied on here (the models' pages fal.ai/models/<id>/api:
fal-ai/flux/dev, fal-ai/flux-pro/kontext, fal-ai/nano-banana/edit, fal-ai/imagen4/preview):

- `POST https://queue.fal.run/{model_id}` with the model's input, then the
  status URL until COMPLETED and the response URL for the output, as for video.
- input: `prompt`, `num_images`, the size as `image_size` (a preset name, or
  `{"width", "height"}`) or as `aspect_ratio` ("16:9", ...), `output_format`
  ("jpeg", "png", "webp" where the model makes it); an edit's images as
  base64 `data:` URIs in `image_url` (one) or `image_urls` (a list), a mask in `mask_url`.
- output: `{"images": [{"url", "content_type", "width", "height"}], "seed",
  "has_nsfw_concepts"?: [bool, ...]}`; a `url` may be a `data:` URI. FLUX's
  safety checker hands back a black image where it flags one: those are left out.

What is sent per model (`image_size_as`, `image_input_field` and
`image_extra_input` in the options override it):

| model id has            | size as                         | an edit's images in                |
|-------------------------|---------------------------------|------------------------------------|
| kontext, nano-banana    | aspect_ratio (the nearest)      | image_url; image_urls for /multi and nano-banana |
| imagen                  | aspect_ratio (1:1, 3:4, 4:3, 9:16, 16:9) | (Imagen does not edit)    |
| anything else (FLUX ...) | image_size: a preset where the size is one, else {width, height} | image_url |
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers import errors
from providers.base import Upload
from providers.fal import translate
from providers.hosted_images import data_uri, nearest_ratio, requested_size
from providers.http import UpstreamRequest

PRESETS = {(1024, 1024): "square_hd", (512, 512): "square", (768, 1024): "portrait_4_3",
           (576, 1024): "portrait_16_9", (1024, 768): "landscape_4_3", (1024, 576): "landscape_16_9"}
RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
_BY_RATIO = ("kontext", "nano-banana", "imagen")


def size_as(model: str, o: translate.Options) -> str:
    if o.image_size_as is not None:
        return o.image_size_as
    return "aspect_ratio" if any(m in model for m in _BY_RATIO) else "image_size"


def image_field(model: str, o: translate.Options) -> str:
    if o.image_input_field:
        return o.image_input_field
    return "image_urls" if model.endswith("/multi") or "nano-banana" in model else "image_url"


def submit_input(data: dict[str, Any], model: str, o: translate.Options, *, provider: str = "",
                 edit: bool = False) -> dict[str, Any]:
    """The model's input for an OpenAI images request (see the table above)."""
    model = model.strip("/")
    body: dict[str, Any] = {"prompt": data["prompt"], "num_images": data.get("n") or 1}
    size = requested_size(data)
    how = size_as(model, o)
    if size is not None and how == "image_size":
        body["image_size"] = PRESETS.get(size) or {"width": size[0], "height": size[1]}
    elif size is not None and how == "aspect_ratio":
        body["aspect_ratio"] = nearest_ratio(*size, IMAGEN_RATIOS if "imagen" in model else RATIOS)
    if data.get("output_format"):
        body["output_format"] = data["output_format"]
    if edit:
        uploads: list[Upload] = data["image"]
        field = image_field(model, o)
        if field.endswith("s"):
            body[field] = [data_uri(u) for u in uploads]
        elif len(uploads) > 1:
            raise errors.BadRequest(f"provider '{provider}' sends one image to '{model}' (in '{field}'); "
                                    f"this edit has {len(uploads)}", provider=provider, param="image")
        else:
            body[field] = data_uri(uploads[0])
        mask: Upload | None = data.get("mask")
        if mask is not None:
            body["mask_url"] = data_uri(mask)
    return {**o.image_extra_input, **body}


def submit_request(o: translate.Options, model: str, data: dict[str, Any], *, provider: str = "",
                   edit: bool = False) -> UpstreamRequest:
    inp = submit_input(data, model, o, provider=provider, edit=edit)
    return UpstreamRequest(f"{o.base_url.rstrip('/')}/{model.strip('/')}", orjson.dumps(inp), translate.headers(o))


def read_result(status: int, body: bytes, hdrs: Mapping[str, str], n: int, *, provider: str,
                secret: str = "") -> list[str]:
    """The response URL's answer: the images' URLs (at most `n`, flagged ones left out; none: an
    empty list), or why the request failed, raised."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if status >= 300:
        if isinstance(doc, dict) and "detail" in doc:
            raise translate.request_failure(status, doc, provider=provider, secret=secret, what="image")
        raise translate.parse_error(status, body, hdrs, provider=provider, secret=secret)
    images = doc.get("images") if isinstance(doc, dict) else None
    flags = doc.get("has_nsfw_concepts") if isinstance(doc, dict) else None
    flags = flags if isinstance(flags, list) else []
    urls: list[str] = []
    flagged = 0
    for i, image in enumerate(images if isinstance(images, list) else []):
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url:
            continue
        if i < len(flags) and flags[i] is True:
            flagged += 1
            continue
        urls.append(url)
    if not urls and flagged:
        raise errors.BadRequest(f"provider '{provider}' flagged every image as unsafe", provider=provider,
                                param="prompt", code="moderation_blocked")
    return urls[:n]
