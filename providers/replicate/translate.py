"""Replicate's HTTP API (api.replicate.com/v1) for video models, as pure functions.

Wire format, as relied on here (replicate/replicate-python: prediction.py,
model.py, exceptions.py; replicate.com/docs/reference/http; the models' API
pages replicate.com/<owner>/<name>/api):

- `POST /v1/models/{owner}/{name}/predictions` with {"input": {...}} runs an
  official model's latest version; `POST /v1/predictions` with {"version":
  "<id>", "input": {...}} runs a pinned one (model written "owner/name:<id>").
  `Authorization: Bearer <token>`. Answers a prediction (201).
- prediction: {id, status: starting | processing | succeeded | failed | canceled
  (| aborted), input, output (a URL string or a list of them), error (text),
  logs (text; a progress bar "45%|####   | 45/100" where the model prints one),
  urls: {get, cancel, stream?}}.
- `GET /v1/predictions/{id}`; `POST /v1/predictions/{id}/cancel`.
- errors: RFC 7807 problem details {"title", "detail", "status"}: 401 bad
  token, 402 insufficient credit, 404 unknown model, 422 input refused, 429
  throttled (with `retry-after`; the detail says when: "Expected available in N
  seconds" / "resets in ~Ns").
- file inputs may be data URIs (the Python client sends them so with
  file_encoding_strategy="base64").

What is sent per model family (each model has its own input schema; `extra_input`
in the options adds or overrides fields for any model):

| model owner / name       | fields                                                                  |
|--------------------------|-------------------------------------------------------------------------|
| kwaivgi/kling-*          | prompt, negative_prompt, duration, aspect_ratio, start_image             |
| google/veo-*             | prompt, negative_prompt, seed, duration, aspect_ratio, resolution, image |
| minimax/*                | prompt, duration, resolution ("768p"/"1080p"), first_frame_image         |
| anything else            | prompt, negative_prompt, seed, duration, aspect_ratio, image             |

`prompt` has style and camera written in; images go as base64 data URIs.
"""
from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, Literal

import orjson
from pydantic import Field

from providers import errors, hosted_video
from providers.base import VideoSpec
from providers.hosted_video import Polled, VideoHttpOptions, aspect_ratio
from providers.http import UpstreamRequest, retry_after
from providers.video_hints import prompt_with_hints

DEFAULT_SIZES = ["1280x720", "720x1280"]
DEFAULT_SECONDS = [5, 10]           # Kling's durations; veo-3: [8], hailuo-02: [6, 10]
# cog / tqdm progress bars, as replicate-python's Prediction.Progress reads them
_BAR = re.compile(r"^\s*(\d{1,3})%\s*\|.*?\|\s*\d+/\d+")
_WAIT = re.compile(r"(?:available in|resets in) ~?(\d+(?:\.\d+)?)\s*s", re.I)
_ERROR_CODE = re.compile(r"\((E\d{3,4})\)")
_VERSION = re.compile(r"^[0-9a-f]{64}$")
_MODERATION = ("flagged as sensitive", "nsfw", "content policy", "safety", "(E005)")


class Options(VideoHttpOptions):
    """`type: replicate`. Defaults suit Kling (5 or 10 s, 16:9 or 9:16)."""
    base_url: str = "https://api.replicate.com/v1"
    video_sizes: list[str] | None = Field(default_factory=lambda: list(DEFAULT_SIZES))
    video_seconds: list[int] | None = Field(default_factory=lambda: list(DEFAULT_SECONDS))
    extra_input: dict[str, Any] = Field(default_factory=dict)   # merged into every prediction's input
    # Images (images.py): the input field an edit's image goes in (a list with image_input_list),
    # the mask's, how the size is sent, fields merged into every image prediction, how often one is checked.
    image_input_field: str = Field("image", min_length=1)
    image_input_list: bool = False
    mask_input_field: str = Field("mask", min_length=1)
    image_size_as: Literal["aspect_ratio", "width_height", "none"] = "aspect_ratio"
    image_extra_input: dict[str, Any] = Field(default_factory=dict)
    image_poll_interval_s: float = Field(0.5, gt=0)
    image_poll_max_interval_s: float = Field(2.0, gt=0)


def headers(o: Options, *, body: bool = True) -> dict[str, str]:
    return hosted_video.headers(f"Bearer {o.api_key}", o, body=body)


def _base(o: Options) -> str:
    return o.base_url.rstrip("/")



def split_model(model: str) -> tuple[str | None, str | None]:
    """("owner/name", None) for an official model, (owner/name or None, version) for a pinned one."""
    name, _, version = model.partition(":")
    if not version and _VERSION.match(name):
        return None, name
    return name, version or None


def submit_input(spec: VideoSpec, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's input for `spec` (see the table above)."""
    name = (split_model(spec.model)[0] or "").lower()
    owner = name.split("/", 1)[0]
    body: dict[str, Any] = {"prompt": prompt_with_hints(spec)}
    image_field = "image"
    if owner == "kwaivgi":
        image_field = "start_image"
        if spec.negative_prompt:
            body["negative_prompt"] = spec.negative_prompt
        body["duration"] = spec.seconds
        body["aspect_ratio"] = aspect_ratio(spec.width, spec.height)
    elif owner == "minimax":
        image_field = "first_frame_image"
        body["duration"] = spec.seconds
        body["resolution"] = "1080p" if min(spec.width, spec.height) >= 1080 else "768p"
    else:
        if spec.negative_prompt:
            body["negative_prompt"] = spec.negative_prompt
        if spec.seed is not None:
            body["seed"] = spec.seed
        body["duration"] = spec.seconds
        body["aspect_ratio"] = aspect_ratio(spec.width, spec.height)
        if owner == "google":
            body["resolution"] = f"{min(spec.width, spec.height)}p"
    if spec.reference_image is not None:
        media = spec.reference_media_type or "image/png"
        body[image_field] = f"data:{media};base64,{base64.b64encode(spec.reference_image).decode()}"
    return {**(extra or {}), **body}


def submit_request(o: Options, spec: VideoSpec) -> UpstreamRequest:
    name, version = split_model(spec.model)
    inp = submit_input(spec, o.extra_input)
    if version:
        return UpstreamRequest(f"{_base(o)}/predictions", orjson.dumps({"version": version, "input": inp}),
                               headers(o))
    return UpstreamRequest(f"{_base(o)}/models/{name}/predictions", orjson.dumps({"input": inp}), headers(o))


def submit_state(body: bytes, *, provider: str) -> dict[str, Any]:
    """What is kept with the job: the prediction id."""
    doc = _json(body)
    pid = doc.get("id") if isinstance(doc, dict) else None
    if not isinstance(pid, str) or not pid:
        raise errors.UpstreamFault(f"provider '{provider}' created the prediction without an id",
                                   provider=provider)
    return {"id": pid}


def status_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(f"{_base(o)}/predictions/{state['id']}", b"", headers(o, body=False), "GET")


def cancel_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(f"{_base(o)}/predictions/{state['id']}/cancel", b"", headers(o, body=False), "POST")


def log_progress(logs: Any) -> int | None:
    """The last progress bar's percentage in the logs, if the model prints one."""
    if not isinstance(logs, str):
        return None
    for line in reversed(logs.split("\n")):
        # tqdm redraws with carriage returns: the last draw on a line is the current one
        m = _BAR.match(line.rsplit("\r", 1)[-1]) or _BAR.match(line)
        if m and int(m.group(1)) <= 100:
            return int(m.group(1))
    return None


def output_url(output: Any) -> str | None:
    """The video among a prediction's outputs: a URL, or the first .mp4 of a list."""
    if isinstance(output, str):
        return output or None
    if isinstance(output, list):
        urls = [u for u in output if isinstance(u, str) and u]
        return next((u for u in urls if u.split("?", 1)[0].endswith(".mp4")), urls[0] if urls else None)
    if isinstance(output, dict):     # a few models answer {"video": url}
        return output_url(output.get("video"))
    return None


def read_status(body: bytes, *, provider: str) -> Polled:
    doc = _json(body)
    if not isinstance(doc, dict):
        raise errors.UpstreamFault(f"provider '{provider}' sent an unreadable prediction", provider=provider)
    status = doc.get("status")
    if status == "starting":
        return Polled("queued", progress=0)
    if status == "processing":
        return Polled("in_progress", progress=log_progress(doc.get("logs")))
    if status == "succeeded":
        url = output_url(doc.get("output"))
        if url is None:
            return Polled("failed", error=errors.UpstreamFault(
                f"provider '{provider}' finished the prediction but it has no video output",
                provider=provider, code="video_generation_failed"))
        return Polled("completed", result=url)
    if status == "failed":
        return Polled("failed", error=prediction_failure(doc, provider=provider))
    if status in ("canceled", "aborted"):
        return Polled("failed", error=errors.UpstreamFault(
            f"provider '{provider}' {status} the prediction", provider=provider, code="video_cancelled"))
    raise errors.UpstreamFault(f"provider '{provider}' sent an unknown prediction status {status!r}",
                               provider=provider)


def prediction_failure(doc: Mapping[str, Any], *, provider: str, what: str = "video") -> errors.ProviderError:
    """A failed prediction: moderation is the request's fault, the rest the model's."""
    error = doc.get("error")
    reason = error if isinstance(error, str) and error else "the prediction failed"
    code = _ERROR_CODE.search(reason)
    message = f"provider '{provider}' failed the {what}" + (f" ({code.group(1)})" if code else "") + f": {reason}"
    if any(m.lower() in reason.lower() for m in _MODERATION):
        return errors.BadRequest(message, provider=provider, code="moderation_blocked")
    return errors.UpstreamFault(message, provider=provider, code=f"{what}_generation_failed")


def parse_error(status: int, body: bytes, hdrs: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    """A non-2xx answer (problem details) as a failure kind."""
    doc = _json(body)
    if isinstance(doc, dict):
        detail, title = doc.get("detail"), doc.get("title")
        message = detail if isinstance(detail, str) and detail else title if isinstance(title, str) else ""
    else:
        message = errors.body_text(body)
    message = message or f"HTTP {status}"
    if secret:
        message = message.replace(secret, "***")
    if status == 402:
        return errors.AuthFailed(f"provider '{provider}' refused the gateway's account: {message}",
                                 provider=provider, upstream_status=status)
    wait = retry_after(hdrs)
    if wait is None and status == 429 and (m := _WAIT.search(message)):
        wait = float(m.group(1))
    return errors.from_status(status, message, provider=provider, retry_after=wait)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
