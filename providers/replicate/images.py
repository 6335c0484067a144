"""OpenAI's Images API on Replicate, as pure functions (predictions, their
errors and failures are the video path's: translate.py).

Wire format, as relied on here (replicate.com/docs/reference/http, "sync
mode" and predictions.create; the models' pages replicate.com/<owner>/<name>/api:
black-forest-labs/flux-schnell, flux-1.1-pro, flux-kontext-pro, google/imagen-4,
google/nano-banana):

- `POST /v1/models/{owner}/{name}/predictions` (a pinned version: `POST
  /v1/predictions` with `version`) with `{"input": {...}}` and `Prefer: wait`:
  Replicate holds the answer up to 60 s and answers the prediction finished when
  it can; one not finished yet is polled (`GET /v1/predictions/{id}`, its
  `urls.get`) until `succeeded`.
- input: `prompt`, `num_outputs` (only when `n` > 1: single-image models take
  none), the size as `aspect_ratio` ("16:9", ...) or `width` and `height`,
  `output_format` ("png", "jpg", "webp"; OpenAI's "jpeg" is sent as "jpg").
- `output`: an image's URL, or a list of them (a `data:` URI is read as it is).
- An edit's image goes as a base64 `data:` URI in `input.image`. Models name
  that field differently (flux-kontext-pro `input_image`, nano-banana
  `image_input`, a list): `image_input_field` and `image_input_list` in the
  options say which; the mask goes in `mask_input_field` (`mask`).

`image_size_as` says how the size is sent: `aspect_ratio` (the default, the
nearest of 1:1, 16:9, 21:9, 3:2, 2:3, 4:5, 5:4, 3:4, 4:3, 9:16, 9:21),
`width_height`, or `none`. `image_extra_input` adds fields for every image prediction.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers import errors, hosted_video
from providers.base import Upload
from providers.hosted_images import data_uri, nearest_ratio, requested_size
from providers.hosted_video import Polled
from providers.http import UpstreamRequest
from providers.replicate import translate

RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
_FORMATS = {"jpeg": "jpg", "png": "png", "webp": "webp"}


def submit_input(data: dict[str, Any], o: translate.Options, *, provider: str = "",
                 edit: bool = False) -> dict[str, Any]:
    """The prediction's input for an OpenAI images request (see above)."""
    body: dict[str, Any] = {"prompt": data["prompt"]}
    n = data.get("n") or 1
    if n > 1:
        body["num_outputs"] = n
    size = requested_size(data)
    if size is not None and o.image_size_as == "aspect_ratio":
        body["aspect_ratio"] = nearest_ratio(*size, RATIOS)
    elif size is not None and o.image_size_as == "width_height":
        body["width"], body["height"] = size
    fmt = _FORMATS.get(data.get("output_format") or "")
    if fmt:
        body["output_format"] = fmt
    if edit:
        uploads: list[Upload] = data["image"]
        if o.image_input_list:
            body[o.image_input_field] = [data_uri(u) for u in uploads]
        elif len(uploads) > 1:
            raise errors.BadRequest(f"provider '{provider}' sends one image (in '{o.image_input_field}'); this "
                                    f"edit has {len(uploads)}", provider=provider, param="image")
        else:
            body[o.image_input_field] = data_uri(uploads[0])
        mask: Upload | None = data.get("mask")
        if mask is not None:
            body[o.mask_input_field] = data_uri(mask)
    return {**o.image_extra_input, **body}


def submit_request(o: translate.Options, model: str, data: dict[str, Any], *, provider: str = "",
                   edit: bool = False) -> UpstreamRequest:
    name, version = translate.split_model(model)
    inp = submit_input(data, o, provider=provider, edit=edit)
    headers = hosted_video.headers(f"Bearer {o.api_key}", o, more={"prefer": "wait"})
    base = o.base_url.rstrip("/")
    if version:
        return UpstreamRequest(f"{base}/predictions", orjson.dumps({"version": version, "input": inp}), headers)
    return UpstreamRequest(f"{base}/models/{name}/predictions", orjson.dumps({"input": inp}), headers)


def prediction_id(doc: dict[str, Any], *, provider: str) -> str:
    pid = doc.get("id")
    if not isinstance(pid, str) or not pid or "/" in pid or "?" in pid:
        raise errors.UpstreamFault(f"provider '{provider}' created the prediction without an id",
                                   provider=provider, code="upstream_malformed")
    return pid


def read_prediction(doc: dict[str, Any], n: int, *, provider: str) -> Polled:
    """A prediction: still running, or finished with its images' URLs (at most `n`; none: an empty
    list), or failed."""
    status = doc.get("status")
    if status == "starting":
        return Polled("queued")
    if status == "processing":
        return Polled("in_progress")
    if status == "succeeded":
        return Polled("completed", result=output_urls(doc.get("output"))[:n])
    if status == "failed":
        return Polled("failed", error=translate.prediction_failure(doc, provider=provider, what="image"))
    if status in ("canceled", "aborted"):
        return Polled("failed", error=errors.UpstreamFault(f"provider '{provider}' {status} the prediction",
                                                           provider=provider, code="image_cancelled"))
    raise errors.UpstreamFault(f"provider '{provider}' sent an unknown prediction status {status!r}",
                               provider=provider, code="upstream_malformed")


def output_urls(output: Any) -> list[str]:
    """The image URLs among a prediction's outputs: one URL, a list of them, or (a few models) an
    object holding them."""
    if isinstance(output, str):
        return [output] if output else []
    if isinstance(output, list):
        return [u for u in output if isinstance(u, str) and u]
    if isinstance(output, dict):
        return [u for v in output.values() for u in output_urls(v) if not isinstance(v, dict)]
    return []
