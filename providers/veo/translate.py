"""Google Veo through the Gemini API, as pure functions: the submit request,
reading the long-running operation into `Polled`, and where the file is.

Wire format (Gemini Developer API, "mldev"), as the google-genai SDK speaks it
(googleapis/python-genai, google/genai/models.py: `_GenerateVideosParameters_to_mldev`,
`_GenerateVideosConfig_to_mldev`, `_Image_to_mldev`, `_GenerateVideosOperation_from_mldev`,
`_GenerateVideosResponse_from_mldev`, `_Video_from_mldev`; operations.py
`_get_videos_operation`), and ai.google.dev/gemini-api/docs/video (REST tab):

- `POST {base}/models/{model}:predictLongRunning`, header `x-goog-api-key`,
  body `{"instances": [{"prompt", "image": {"bytesBase64Encoded", "mimeType"}}],
  "parameters": {"aspectRatio": "16:9"|"9:16", "resolution": "720p"|"1080p",
  "durationSeconds": 8, "negativePrompt": ...}}`; answers an operation
  `{"name": "models/<model>/operations/<id>"}`.
- `GET {base}/{operation name}` until `"done": true`; then either
  `"error": {"code", "message", "status"?}` (google.rpc.Status: `code` is a
  google.rpc.Code such as 3 INVALID_ARGUMENT, not an HTTP status) or
  `"response": {"generateVideoResponse": {"generatedSamples": [{"video":
  {"uri"}}], "raiMediaFilteredCount", "raiMediaFilteredReasons"}}`. A sample
  may carry the bytes inline instead (`video.encodedVideo`, base64).
- The `uri` (`{base}/files/<id>:download?alt=media`) is fetched with the same
  API key header; it redirects to storage.
- `seed` is refused by the SDK for the Developer API ("only supported in
  Vertex AI mode"), so it is sent only when the provider's `send_seed` is on.
- No progress figure is reported while the operation runs; the adapter
  estimates one from the time elapsed (`progress_estimate`).
"""
from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from providers.base import VideoSpec
from providers.errors import BadRequest, ProviderError, UpstreamFault
from providers.gemini.api import resource
from providers.hosted_video import Polled
from providers.http import UpstreamRequest
from providers.video_hints import prompt_with_hints

# What Veo generates: (aspectRatio, resolution) for each size the gateway offers.
SIZES: dict[str, tuple[str, str]] = {
    "1280x720": ("16:9", "720p"),
    "720x1280": ("9:16", "720p"),
    "1920x1080": ("16:9", "1080p"),
    "1080x1920": ("9:16", "1080p"),
}
VEO_SIZES: frozenset[str] = frozenset(SIZES)
VEO_SECONDS: frozenset[str] = frozenset({"4", "6", "8"})

_RESOLUTIONS = {720: "720p", 1080: "1080p", 2160: "4k"}
# google.rpc.Code numbers an operation's error may carry, and what they are called.
_RPC_CODES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
              6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
              10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
              15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
_REFUSED = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "NOT_FOUND"})
ESTIMATE_CEILING = 95      # an estimated progress never claims more than this


# --- submit -------------------------------------------------------------------

def shape(width: int, height: int, *, provider: str = "") -> tuple[str, str]:
    """Veo's (aspectRatio, resolution) for a size: landscape 16:9 or portrait 9:16,
    named by the short side (720p, 1080p, 4k)."""
    known = SIZES.get(f"{width}x{height}")
    if known:
        return known
    short = min(width, height)
    if width == height or short not in _RESOLUTIONS or max(width, height) * 9 != short * 16:
        raise BadRequest(f"provider '{provider}' (Veo) cannot make {width}x{height} videos: 16:9 or 9:16 "
                         f"at 720p, 1080p or 4k only", provider=provider, param="size")
    return ("16:9" if width > height else "9:16"), _RESOLUTIONS[short]


def submit_body(spec: VideoSpec, *, send_seed: bool = False, provider: str = "") -> dict[str, Any]:
    """The `predictLongRunning` body for a create."""
    if spec.op != "create":
        raise BadRequest(f"provider '{provider}' (Veo) does not support video op '{spec.op}'",
                         provider=provider, code="unsupported_operation")
    aspect, resolution = shape(spec.width, spec.height, provider=provider)
    instance: dict[str, Any] = {"prompt": prompt_with_hints(spec)}
    if spec.reference_image is not None:
        instance["image"] = {"bytesBase64Encoded": base64.b64encode(spec.reference_image).decode("ascii"),
                             "mimeType": spec.reference_media_type or "image/png"}
    parameters: dict[str, Any] = {"aspectRatio": aspect, "resolution": resolution,
                                  "durationSeconds": spec.seconds}
    if spec.negative_prompt:
        parameters["negativePrompt"] = spec.negative_prompt
    if send_seed and spec.seed is not None:
        parameters["seed"] = spec.seed
    return {"instances": [instance], "parameters": parameters}


def submit_request(spec: VideoSpec, base_url: str, headers: dict[str, str], *, send_seed: bool = False,
                   provider: str = "") -> UpstreamRequest:
    url = f"{base_url.rstrip('/')}/{quote(resource(spec.model), safe='/')}:predictLongRunning"
    return UpstreamRequest(url, orjson.dumps(submit_body(spec, send_seed=send_seed, provider=provider)), headers)


def submitted(body: bytes, *, provider: str) -> dict[str, Any]:
    """The operation's name, from the submit answer: what `video_run` polls."""
    op = _json(body, provider)
    name = op.get("name")
    if not isinstance(name, str) or not name or name.startswith("/") or "://" in name or ".." in name:
        raise UpstreamFault(f"provider '{provider}' accepted the video but named no operation", provider=provider)
    return {"operation": name}


# --- status -------------------------------------------------------------------

def operation_request(base_url: str, headers: dict[str, str], name: str) -> UpstreamRequest:
    return UpstreamRequest(f"{base_url.rstrip('/')}/{quote(name, safe='/')}", b"", _no_body(headers), "GET")


def cancel_request(base_url: str, headers: dict[str, str], name: str) -> UpstreamRequest:
    """google.longrunning's `:cancel` (empty body); best effort: Veo may not honour it."""
    return UpstreamRequest(f"{base_url.rstrip('/')}/{quote(name, safe='/')}:cancel", b"", _no_body(headers))


def progress_estimate(elapsed_s: float, expected_s: float) -> int:
    """A rising figure from the time gone by, since Veo reports none: linear to
    `expected_s`, never above `ESTIMATE_CEILING` until the video is there."""
    if expected_s <= 0:
        return 0
    return max(0, min(ESTIMATE_CEILING, int(100 * elapsed_s / expected_s)))


def polled(body: bytes, *, provider: str, estimate: int | None = None) -> Polled:
    """An operation in the gateway's terms; `result` is the video's URI (str) or
    its bytes when the sample carries them inline."""
    op = _json(body, provider)
    if not op.get("done"):
        return Polled("in_progress", estimate)
    error = op.get("error")
    if isinstance(error, dict) and error:
        return Polled("failed", error=job_error(error, provider=provider))
    response = op.get("response")
    result = response.get("generateVideoResponse") if isinstance(response, dict) else None
    result = result if isinstance(result, dict) else {}
    samples = result.get("generatedSamples") or []
    for sample in samples if isinstance(samples, list) else []:
        found = _sample_video(sample)
        if found is not None:
            return Polled("completed", 100, result=found)
    reasons = [r for r in result.get("raiMediaFilteredReasons") or [] if isinstance(r, str)]
    if reasons or result.get("raiMediaFilteredCount"):
        message = " ".join(reasons) or "The video was blocked by the provider's safety filters."
        return Polled("failed", error=BadRequest(message, provider=provider, code="moderation_blocked"))
    return Polled("failed", error=UpstreamFault(f"provider '{provider}' finished the video but sent no file",
                                                provider=provider, code="video_generation_failed"))


def job_error(error: dict[str, Any], *, provider: str) -> ProviderError:
    """Why the operation failed: google.rpc.Status {code, message, status?}."""
    code = error.get("code")
    state = error.get("status")
    if not isinstance(state, str) or not state:
        state = _RPC_CODES.get(code, "") if isinstance(code, int) else ""
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"provider '{provider}' reported the video failed" + (f" ({state})" if state else "")
    lowered = message.lower()
    if "safety" in lowered or "responsible ai" in lowered or "usage guidelines" in lowered:
        return BadRequest(message, provider=provider, code="moderation_blocked")
    name = state.lower() if state else "video_generation_failed"
    if state in _REFUSED:
        return BadRequest(message, provider=provider, code=name)
    return UpstreamFault(message, provider=provider, code=name)


# --- the file -----------------------------------------------------------------

def download_request(uri: str, base_url: str, headers: dict[str, str]) -> UpstreamRequest:
    """GET the generated file. The API key goes only where the API itself is
    (the URI is on the API's host; it then redirects to signed storage)."""
    h = _no_body(headers)
    if _origin(uri) != _origin(base_url):
        h = {k: v for k, v in h.items() if k.lower() != "x-goog-api-key"}
    return UpstreamRequest(uri, b"", h, "GET")


def _sample_video(sample: Any) -> str | bytes | None:
    video = sample.get("video") if isinstance(sample, dict) else None
    if not isinstance(video, dict):
        return None
    uri = video.get("uri")
    if isinstance(uri, str) and uri:
        return uri
    inline = video.get("encodedVideo")
    if isinstance(inline, str) and inline:
        try:
            return base64.b64decode(inline, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _json(body: bytes, provider: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise UpstreamFault(f"provider '{provider}' sent a malformed operation", provider=provider)
    return doc


def _no_body(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()
