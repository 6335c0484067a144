"""OpenAI's Videos API (Sora), as pure functions: the submit requests, reading
a Video object into `Polled`, and where the finished files are.

Wire format, as the official SDK sends it (openai-python 2.x,
`resources/videos.py` and `types/video*.py`; OpenAPI spec mirrored in
genai-rs/openai-client-base `docs/VideosApi.md`):

- `POST /videos`: multipart/form-data with text parts `prompt`, `model`,
  `seconds` ("4"), `size` ("1280x720") and a file part `input_reference`.
- `POST /videos/{id}/remix`: JSON `{"prompt"}` (a remix of a video made by
  another provider has no id here: it is made from the prompt by `POST /videos`).
- `POST /videos/edits`: multipart `prompt`, `video[id]` (the SDK's nested
  form encoding of `video={"id": ...}`).
- `POST /videos/extensions`: multipart `prompt`, `seconds` (the length of the
  new segment), `video[id]`. The extension is the whole video, the source
  and the new segment stitched (its `seconds` is their total).
- Each answers a Video object: `{"id", "object": "video", "status":
  "queued"|"in_progress"|"completed"|"failed", "progress": 0..100, "error":
  {"code", "message"} | null, ...}`; `GET /videos/{id}` answers the same.
- `GET /videos/{id}/content?variant=video|thumbnail|spritesheet`: the MP4,
  a WebP thumbnail, a JPEG spritesheet (Accept: application/binary).
- `DELETE /videos/{id}`.
- Refusals use the usual `{"error": {"message", "type", "param", "code"}}`
  body, read by `providers.openai.chat.parse_error`.

OpenAI answers 400 for parameters it does not know, so the gateway's own
extras (negative_prompt, seed) are not sent; style and camera are written
into the prompt (`prompt_with_hints`).
"""
from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import orjson

from providers.base import VideoSpec
from providers.errors import BadRequest, ProviderError, UpstreamFault
from providers.hosted_video import Polled
from providers.http import UpstreamRequest
from providers.video_hints import prompt_with_hints

VARIANTS = ("video", "thumbnail", "spritesheet")

_QUEUED = frozenset({"queued", "pending", "submitted"})
_COMPLETED = frozenset({"completed", "succeeded"})
_FAILED = frozenset({"failed", "cancelled", "canceled", "expired", "error"})
# Failure codes that say the request itself was refused (content policy, bad
# input): another attempt with the same request would fail the same way.
_REFUSED_MARKERS = ("moderation", "policy", "invalid", "unsupported", "safety")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/webp": "webp",
               "image/gif": "gif"}


# --- submit -------------------------------------------------------------------

def submit_request(spec: VideoSpec, base_url: str, headers: dict[str, str], *,
                   provider: str, boundary: str | None = None) -> UpstreamRequest:
    """The request that hands `spec` over: create, remix, edit or extend."""
    base = base_url.rstrip("/")
    prompt = prompt_with_hints(spec)
    # A remix of a video made elsewhere (no id here) is made from the prompt, as the gateway expects.
    if spec.op == "create" or (spec.op == "remix" and not _has_source(spec)):
        parts: list[tuple[str, Any]] = [("prompt", prompt), ("model", spec.model),
                                        ("seconds", str(spec.seconds)), ("size", spec.size)]
        if spec.reference_image is not None:
            media_type = spec.reference_media_type or "application/octet-stream"
            name = f"reference.{_EXTENSIONS.get(media_type, 'bin')}"
            parts.append(("input_reference", (name, media_type, spec.reference_image)))
        return _multipart(f"{base}/videos", parts, headers, boundary)
    source = source_id(spec, provider=provider)
    if spec.op == "remix":
        body = orjson.dumps({"prompt": prompt})
        return UpstreamRequest(f"{base}/videos/{quote(source, safe='')}/remix", body,
                               {**headers, "content-type": "application/json"})
    if spec.op == "edit":
        return _multipart(f"{base}/videos/edits", [("prompt", prompt), ("video[id]", source)], headers, boundary)
    if spec.op == "extend":     # spec.seconds is the stitched total; OpenAI takes the new segment's length
        return _multipart(f"{base}/videos/extensions",
                          [("prompt", prompt), ("seconds", str(spec.seconds - spec.source_seconds)),
                           ("video[id]", source)], headers, boundary)
    raise BadRequest(f"provider '{provider}' does not support video op '{spec.op}'", provider=provider,
                     code="unsupported_operation")


def _has_source(spec: VideoSpec) -> bool:
    vid = (spec.source_state or {}).get("id")
    return isinstance(vid, str) and bool(vid)


def source_id(spec: VideoSpec, *, provider: str) -> str:
    """The upstream id of the video a remix, edit or extension starts from."""
    state = spec.source_state or {}
    vid = state.get("id")
    if not isinstance(vid, str) or not vid:
        raise BadRequest(f"provider '{provider}' can {spec.op} only videos it generated itself",
                         provider=provider, param="video_id", code="unsupported_operation")
    return vid


def submitted(body: bytes, *, provider: str) -> dict[str, Any]:
    """The job's state to store, from the submit answer (a Video object)."""
    video = _video(body, provider)
    vid = video.get("id")
    if not isinstance(vid, str) or not vid:
        raise UpstreamFault(f"provider '{provider}' accepted the video but sent no id", provider=provider)
    return {"id": vid}


# --- status -------------------------------------------------------------------

def status_request(base_url: str, headers: dict[str, str], vid: str) -> UpstreamRequest:
    return UpstreamRequest(f"{base_url.rstrip('/')}/videos/{quote(vid, safe='')}", b"", headers, "GET")


def polled(body: bytes, *, provider: str) -> Polled:
    """A status answer (a Video object) in the gateway's terms."""
    video = _video(body, provider)
    status = str(video.get("status") or "").lower()
    progress = video.get("progress")
    pct = int(progress) if isinstance(progress, (int, float)) and not isinstance(progress, bool) else None
    if status in _COMPLETED:
        return Polled("completed", 100, result=video.get("id"))
    if status in _FAILED:
        return Polled("failed", pct, error=job_error(video.get("error"), status, provider=provider))
    return Polled("queued" if status in _QUEUED else "in_progress", pct)


def job_error(error: Any, status: str = "failed", *, provider: str) -> ProviderError:
    """Why an upstream job failed, from the Video object's `error` {code, message}."""
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    code = str(code) if code not in (None, "") else "video_generation_failed"
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"provider '{provider}' reported the video {status}"
    lowered = code.lower()
    if any(marker in lowered for marker in _REFUSED_MARKERS):
        return BadRequest(message, provider=provider, code=code)
    return UpstreamFault(message, provider=provider, code=code)


# --- files and cancel ---------------------------------------------------------

def content_request(base_url: str, headers: dict[str, str], vid: str, variant: str = "video") -> UpstreamRequest:
    assert variant in VARIANTS
    return UpstreamRequest(f"{base_url.rstrip('/')}/videos/{quote(vid, safe='')}/content?variant={variant}",
                           b"", {**headers, "accept": "application/binary"}, "GET")


def delete_request(base_url: str, headers: dict[str, str], vid: str) -> UpstreamRequest:
    return UpstreamRequest(f"{base_url.rstrip('/')}/videos/{quote(vid, safe='')}", b"", headers, "DELETE")


# --- helpers ------------------------------------------------------------------

def _video(body: bytes, provider: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise UpstreamFault(f"provider '{provider}' sent a malformed video object", provider=provider)
    return doc


def multipart(parts: list[tuple[str, Any]], boundary: str | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type. A part's value is text,
    or (filename, media type, bytes) for a file."""
    boundary = boundary or "gateway-" + secrets.token_hex(16)
    out = bytearray()
    for name, value in parts:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, media_type, data = value
            out += (f'Content-Disposition: form-data; name="{_quoted(name)}"; filename="{_quoted(filename)}"\r\n'
                    f"Content-Type: {media_type}\r\n\r\n").encode()
            out += data
        else:
            out += f'Content-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
            out += str(value).encode()
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _multipart(url: str, parts: list[tuple[str, Any]], headers: dict[str, str],
               boundary: str | None) -> UpstreamRequest:
    body, content_type = multipart(parts, boundary)
    return UpstreamRequest(url, body, {**headers, "content-type": content_type})


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
