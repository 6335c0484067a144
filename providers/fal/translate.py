"""fal.ai's queue API (queue.fal.run) for video, as pure functions.

Wire format, as relied on here (docs.fal.ai/model-endpoints/queue and
/documentation/model-apis/inference/queue, /model-apis/request-errors; the
fal-ai/fal-js client: libs/client/src/queue.ts, response.ts, types/common.ts;
the models' pages fal.ai/models/<id>/api):

- `POST https://queue.fal.run/{model_id}` (model_id may have a subpath, e.g.
  fal-ai/kling-video/v2.1/standard/text-to-video) with the model's input as the
  JSON body, `Authorization: Key <key>`; answers {request_id, status_url,
  response_url, cancel_url} (the status and response URLs drop the subpath:
  kept as given, never rebuilt).
- `GET status_url` (`?logs=1` adds the runner's log lines): {status: IN_QUEUE
  (with queue_position) | IN_PROGRESS (logs) | COMPLETED (logs, metrics)}.
- `GET response_url`: the model's output, for video models {"video": {"url", ...}}.
  A request that failed answers here with its error status and a body
  {"detail": "<text>" | [{loc, msg, type}], "error_type"?: "request_timeout" | ...}.
- `PUT cancel_url`: cancels a request still in the queue (202; 400 once it runs).
- errors: FastAPI's {"detail": ...}; 401/403 for the key (403 "User is locked.
  Reason: Exhausted balance" too), 422 for input the model refuses.

What is sent per model family (fal has no common video schema; `extra_input`
in the options adds or overrides fields for any model):

| model id starts with    | fields                                                                 |
|-------------------------|------------------------------------------------------------------------|
| fal-ai/kling-video      | prompt, negative_prompt, duration "5"/"10", aspect_ratio ("16:9", ...), image_url |
| fal-ai/veo              | prompt, negative_prompt, seed, duration "8s", aspect_ratio, resolution "720p", image_url |
| fal-ai/ltx-video        | prompt, negative_prompt, seed, image_url (size and length fixed by the model) |
| anything else           | prompt, negative_prompt, seed, duration (int), aspect_ratio, resolution, image_url |

`prompt` has style and camera written in (no model takes them as parameters).
With a reference image, a model id ending in /text-to-video is sent to the
matching /image-to-video endpoint; `image_url` is a base64 data URI (fal
accepts data URIs wherever it takes a file URL).
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
DEFAULT_SECONDS = [5, 10]          # Kling's durations; veo3: [8]
_PERCENT = re.compile(r"(\d{1,3})%")
_MODERATION = ("content_policy", "nsfw", "safety", "moderation")


class Options(VideoHttpOptions):
    """`type: fal`. Defaults suit Kling (5 or 10 s, 16:9 or 9:16 at 720p)."""
    base_url: str = "https://queue.fal.run"
    video_sizes: list[str] | None = Field(default_factory=lambda: list(DEFAULT_SIZES))
    video_seconds: list[int] | None = Field(default_factory=lambda: list(DEFAULT_SECONDS))
    extra_input: dict[str, Any] = Field(default_factory=dict)   # merged into every request's input
    # Images (images.py): the field an edit's images go in (unset: by model), how the size is
    # sent (unset: by model), fields merged into every image request, how often a job is checked.
    image_input_field: str | None = None
    image_size_as: Literal["image_size", "aspect_ratio", "none"] | None = None
    image_extra_input: dict[str, Any] = Field(default_factory=dict)
    image_poll_interval_s: float = Field(0.5, gt=0)
    image_poll_max_interval_s: float = Field(2.0, gt=0)


def headers(o: Options, *, body: bool = True) -> dict[str, str]:
    return hosted_video.headers(f"Key {o.api_key}", o, body=body)



def resolution(width: int, height: int) -> str:
    return f"{min(width, height)}p"


def endpoint(spec: VideoSpec) -> str:
    model = spec.model.strip("/")
    if spec.reference_image is not None and model.endswith("/text-to-video"):
        model = model[: -len("text-to-video")] + "image-to-video"
    return model


def submit_input(spec: VideoSpec, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's input for `spec` (see the table above)."""
    model = spec.model.strip("/")
    body: dict[str, Any] = {"prompt": prompt_with_hints(spec)}
    if spec.negative_prompt:
        body["negative_prompt"] = spec.negative_prompt
    kling = model.startswith("fal-ai/kling-video")
    ltx = model.startswith("fal-ai/ltx-video")
    if spec.seed is not None and not kling:
        body["seed"] = spec.seed
    if kling:
        body["duration"] = str(spec.seconds)
        if spec.reference_image is None:      # image-to-video follows the image's shape
            body["aspect_ratio"] = aspect_ratio(spec.width, spec.height)
    elif model.startswith("fal-ai/veo"):
        body["duration"] = f"{spec.seconds}s"
        body["aspect_ratio"] = aspect_ratio(spec.width, spec.height)
        body["resolution"] = resolution(spec.width, spec.height)
    elif not ltx:
        body["duration"] = spec.seconds
        body["aspect_ratio"] = aspect_ratio(spec.width, spec.height)
        body["resolution"] = resolution(spec.width, spec.height)
    if spec.reference_image is not None:
        media = spec.reference_media_type or "image/png"
        body["image_url"] = f"data:{media};base64,{base64.b64encode(spec.reference_image).decode()}"
    return {**(extra or {}), **body}


def submit_request(o: Options, spec: VideoSpec) -> UpstreamRequest:
    return UpstreamRequest(f"{o.base_url.rstrip('/')}/{endpoint(spec)}",
                           orjson.dumps(submit_input(spec, o.extra_input)), headers(o))


def submit_state(body: bytes, *, provider: str) -> dict[str, Any]:
    """What is kept with the job: the request id and the URLs fal gave for it."""
    doc = _json(body)
    doc = doc if isinstance(doc, dict) else {}
    state = {k: doc.get(k) for k in ("request_id", "status_url", "response_url", "cancel_url")}
    if not all(isinstance(state[k], str) and state[k] for k in ("request_id", "status_url", "response_url")):
        raise errors.UpstreamFault(f"provider '{provider}' queued the video without its request URLs",
                                   provider=provider)
    return state


def status_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest:
    url = state["status_url"]
    url += ("&" if "?" in url else "?") + "logs=1"
    return UpstreamRequest(url, b"", headers(o, body=False), "GET")


def response_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(state["response_url"], b"", headers(o, body=False), "GET")


def cancel_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest | None:
    url = state.get("cancel_url")
    return UpstreamRequest(url, b"", headers(o, body=False), "PUT") if url else None


def log_progress(logs: Any) -> int | None:
    """The last percentage in the runner's log lines (a progress bar), if any."""
    if not isinstance(logs, list):
        return None
    for entry in reversed(logs):
        message = entry.get("message") if isinstance(entry, dict) else None
        if isinstance(message, str):
            found = _PERCENT.findall(message)
            if found and int(found[-1]) <= 100:
                return int(found[-1])
    return None


def read_status(body: bytes, *, provider: str, what: str = "video") -> Polled:
    """A status answer. COMPLETED comes back with no `result`: the output (or
    why it failed) is at the response URL, read by `read_result`."""
    doc = _json(body)
    if not isinstance(doc, dict):
        raise errors.UpstreamFault(f"provider '{provider}' sent an unreadable status", provider=provider)
    status = doc.get("status")
    if status == "IN_QUEUE":
        return Polled("queued", progress=0)
    if status == "IN_PROGRESS":
        return Polled("in_progress", progress=log_progress(doc.get("logs")))
    if status == "COMPLETED":
        if doc.get("error"):       # newer status answers say a request failed here too
            return Polled("failed", error=request_failure(500, doc, provider=provider, what=what))
        return Polled("completed")
    raise errors.UpstreamFault(f"provider '{provider}' sent an unknown request status {status!r}",
                               provider=provider)


def read_result(status: int, body: bytes, hdrs: Mapping[str, str], *, provider: str,
                secret: str = "") -> Polled:
    """The response URL's answer: the video's URL, or why the request failed."""
    doc = _json(body)
    if status < 300:
        video = doc.get("video") if isinstance(doc, dict) else None
        url = video.get("url") if isinstance(video, dict) else video
        if not isinstance(url, str) or not url:
            return Polled("failed", error=errors.UpstreamFault(
                f"provider '{provider}' finished the request but sent no video", provider=provider,
                code="video_generation_failed"))
        return Polled("completed", result=url)
    if isinstance(doc, dict) and "detail" in doc:
        return Polled("failed", error=request_failure(status, doc, provider=provider, secret=secret))
    raise parse_error(status, body, hdrs, provider=provider, secret=secret)   # a proxy's page: try again


def request_failure(status: int, doc: Mapping[str, Any], *, provider: str, secret: str = "",
                    what: str = "video") -> errors.ProviderError:
    """A finished request that failed: 4xx (input refused, moderation) is the
    request's fault; 5xx (timeouts, runner crashes after fal's retries), fal's."""
    message = _detail(doc.get("detail") if "detail" in doc else doc.get("error"))
    kind = doc.get("error_type") if isinstance(doc.get("error_type"), str) else _detail_type(doc.get("detail"))
    if secret:
        message = message.replace(secret, "***")
    text = (f"provider '{provider}' failed the {what}" + (f" ({kind})" if kind else "")
            + f": {message or 'no reason given'}")
    if any(m in (kind or "").lower() or m in message.lower() for m in _MODERATION):
        return errors.BadRequest(text, provider=provider, code="moderation_blocked", upstream_status=status)
    if 400 <= status < 500:
        return errors.BadRequest(text, status=400, provider=provider, code=f"{what}_generation_failed",
                                 upstream_status=status)
    return errors.UpstreamFault(text, provider=provider, code=f"{what}_generation_failed", upstream_status=status)


def parse_error(status: int, body: bytes, hdrs: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    """A non-2xx answer to a submit or status call as a failure kind."""
    doc = _json(body)
    if isinstance(doc, dict):
        message = _detail(doc.get("detail"))
    else:
        message = errors.body_text(body)
    message = message or f"HTTP {status}"
    if secret:
        message = message.replace(secret, "***")
    if status == 402:
        return errors.AuthFailed(f"provider '{provider}' refused the gateway's account: {message}",
                                 provider=provider, upstream_status=status)
    return errors.from_status(status, message, provider=provider, retry_after=retry_after(hdrs))


def _detail(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for d in detail:
            if isinstance(d, dict) and d.get("msg"):
                loc = ".".join(str(p) for p in d.get("loc") or [] if p != "body")
                parts.append(f"{loc}: {d['msg']}" if loc else str(d["msg"]))
        return "; ".join(parts)
    return ""


def _detail_type(detail: Any) -> str | None:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict) and isinstance(detail[0].get("type"), str):
        return detail[0]["type"]
    return None


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
