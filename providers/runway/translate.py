"""Runway's developer API (api.dev.runwayml.com/v1) for video, as pure functions.

Wire format, as relied on here (runwayml/sdk-python, generated from Runway's
OpenAPI spec: types/text_to_video_create_params.py, image_to_video_create_params.py,
task_retrieve_response.py, resources/tasks.py, _client.py; and the docs pages
docs.dev.runwayml.com/api-details/errors, /errors/task-failures, /assets/inputs):

- every call: `Authorization: Bearer <key>`, `X-Runway-Version: 2024-11-06`.
- `POST /v1/text_to_video` {model, promptText, ratio, duration, seed?, negativePrompt?}
  and `POST /v1/image_to_video` the same plus `promptImage` (an HTTPS URL or a
  base64 data URI, `data:image/png;base64,...`, under 5 MB encoded); both answer `{"id": ...}`.
  `ratio` is the output size itself, "1280:720". gen4.5 / gen4_turbo take `seed`
  (no negative prompt); veo3.1 / veo3.1_fast take `negativePrompt` (no seed).
- `GET /v1/tasks/{id}`: {id, status: PENDING | THROTTLED | RUNNING | SUCCEEDED |
  FAILED | CANCELLED, progress (0..1, while RUNNING), output: [url] (SUCCEEDED;
  expire in 24-48 h), failure (text), failureCode ("SAFETY.INPUT.TEXT",
  "INTERNAL.BAD_OUTPUT.CODE01", ...)}.
- `DELETE /v1/tasks/{id}`: cancels a running task (deletes a finished one).
- errors: `{"error": "<human-readable>"}` (400s may add `issues`); 429 when the
  integration's limits are reached; 502/503/504 when Runway sheds load.
"""
from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import Field

from providers import errors, hosted_video
from providers.base import VideoSpec
from providers.hosted_video import Polled, VideoHttpOptions
from providers.http import UpstreamRequest, retry_after
from providers.video_hints import prompt_with_hints

API_VERSION = "2024-11-06"
# Sizes every current Runway video model takes (gen4.5, gen4_turbo, veo3, veo3.1).
DEFAULT_SIZES = ["1280x720", "720x1280"]
DEFAULT_SECONDS = [5, 10]          # gen4_turbo: 5 or 10; gen4.5: 2..10 (veo3.1: set [4, 6, 8])

_QUEUED = frozenset({"PENDING", "THROTTLED"})
_BILLING_PHRASES = ("enough credits", "insufficient credits", "not have enough credit")


class Options(VideoHttpOptions):
    """`type: runway`. Defaults suit gen4.5 / gen4_turbo; for veo3.x set
    `video_seconds: [4, 6, 8]` (veo3: [8]) and add 1920x1080 / 1080x1920 to
    `video_sizes`; gen4 image-to-video also takes 960x960, 1104x832, 832x1104, 1584x672."""
    base_url: str = "https://api.dev.runwayml.com/v1"
    api_version: str = API_VERSION                    # the `X-Runway-Version` header
    video_sizes: list[str] | None = Field(default_factory=lambda: list(DEFAULT_SIZES))
    video_seconds: list[int] | None = Field(default_factory=lambda: list(DEFAULT_SECONDS))
    poll_interval_s: float = Field(5.0, gt=0)         # Runway asks for no more than one check per 5 s


def headers(o: Options) -> dict[str, str]:
    return hosted_video.headers(f"Bearer {o.api_key}", o, more={"x-runway-version": o.api_version})


def _base(o: Options) -> str:
    return o.base_url.rstrip("/")


def _is_veo(model: str) -> bool:
    return model.startswith("veo")


def data_uri(image: bytes, media_type: str | None) -> str:
    return f"data:{media_type or 'image/png'};base64,{base64.b64encode(image).decode()}"


def submit_body(spec: VideoSpec) -> dict[str, Any]:
    """The task for `spec`: style and camera go into the prompt (Runway has no
    parameter for them); a negative prompt only where the model takes one."""
    body: dict[str, Any] = {"model": spec.model, "promptText": prompt_with_hints(spec),
                            "ratio": f"{spec.width}:{spec.height}", "duration": spec.seconds}
    if _is_veo(spec.model):
        if spec.negative_prompt:
            body["negativePrompt"] = spec.negative_prompt
    elif spec.seed is not None:
        body["seed"] = spec.seed
    if spec.reference_image is not None:
        body["promptImage"] = data_uri(spec.reference_image, spec.reference_media_type)
    return body


def submit_request(o: Options, spec: VideoSpec) -> UpstreamRequest:
    path = "/image_to_video" if spec.reference_image is not None else "/text_to_video"
    return UpstreamRequest(_base(o) + path, orjson.dumps(submit_body(spec)), headers(o))


def submit_state(body: bytes, *, provider: str) -> dict[str, Any]:
    """What is kept with the job: the task id."""
    doc = _json(body)
    task = doc.get("id") if isinstance(doc, dict) else None
    if not isinstance(task, str) or not task:
        raise errors.UpstreamFault(f"provider '{provider}' accepted the video without a task id",
                                   provider=provider)
    return {"id": task}


def task_url(o: Options, state: Mapping[str, Any]) -> str:
    return f"{_base(o)}/tasks/{state['id']}"


def status_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(task_url(o, state), b"", headers(o), "GET")


def cancel_request(o: Options, state: Mapping[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(task_url(o, state), b"", headers(o), "DELETE")


def read_status(body: bytes, *, provider: str) -> Polled:
    """A `GET /tasks/{id}` answer in the gateway's terms."""
    doc = _json(body)
    if not isinstance(doc, dict):
        raise errors.UpstreamFault(f"provider '{provider}' sent an unreadable task", provider=provider)
    status = doc.get("status")
    if status in _QUEUED:
        return Polled("queued", progress=0)
    if status == "RUNNING":
        p = doc.get("progress")
        return Polled("in_progress", progress=round(p * 100) if isinstance(p, (int, float)) else None)
    if status == "SUCCEEDED":
        output = doc.get("output")
        url = output[0] if isinstance(output, list) and output and isinstance(output[0], str) else None
        if url is None:
            return Polled("failed", error=errors.UpstreamFault(
                f"provider '{provider}' finished the video but named no output", provider=provider,
                code="video_generation_failed"))
        return Polled("completed", result=url)
    if status == "FAILED":
        return Polled("failed", error=task_failure(doc, provider=provider))
    if status == "CANCELLED":
        return Polled("failed", error=errors.UpstreamFault(
            f"provider '{provider}' cancelled the video task", provider=provider, code="video_cancelled"))
    raise errors.UpstreamFault(f"provider '{provider}' sent an unknown task status {status!r}",
                               provider=provider)


def task_failure(doc: Mapping[str, Any], *, provider: str) -> errors.ProviderError:
    """A FAILED task as an error. SAFETY.* (moderation) and ASSET.* (an input
    Runway could not use) are the request's fault; INTERNAL.* and the rest, Runway's."""
    fcode, failure = doc.get("failureCode"), doc.get("failure")
    if not isinstance(fcode, str):
        fcode = ""
    reason = failure if isinstance(failure, str) and failure else "the video could not be generated"
    message = f"provider '{provider}' failed the video" + (f" ({fcode})" if fcode else "") + f": {reason}"
    if fcode.startswith("SAFETY."):
        return errors.BadRequest(message, provider=provider, code="moderation_blocked")
    if fcode.startswith("ASSET."):
        return errors.BadRequest(message, provider=provider, code="invalid_input_reference")
    return errors.UpstreamFault(message, provider=provider, code="video_generation_failed")


def parse_error(status: int, body: bytes, hdrs: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    """A non-2xx answer as a failure kind: `{"error": "...", "issues": [...]}`."""
    message = _error_message(body) or f"HTTP {status}"
    if secret:
        message = message.replace(secret, "***")
    if status in (400, 402, 403) and any(p in message.lower() for p in _BILLING_PHRASES):
        return errors.AuthFailed(f"provider '{provider}' refused the gateway's account (credits): {message}",
                                 provider=provider, upstream_status=status)
    if status == 402:
        return errors.AuthFailed(f"provider '{provider}' refused the gateway's account: {message}",
                                 provider=provider, upstream_status=status)
    return errors.from_status(status, message, provider=provider, retry_after=retry_after(hdrs))


def _error_message(body: bytes) -> str:
    doc = _json(body)
    if not isinstance(doc, dict):
        return errors.body_text(body)
    err = doc.get("error")
    message = err if isinstance(err, str) else ""
    details = "; ".join(
        (".".join(str(p) for p in i.get("path") or []) + ": " if i.get("path") else "") + str(i["message"])
        for i in doc.get("issues") or [] if isinstance(i, dict) and i.get("message"))
    if details:
        message = f"{message} ({details})" if message else details
    return message


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
