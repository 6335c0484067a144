"""The body of `POST /v1/videos`, turned into a validated `VideoRequest`.

The official SDK always sends `multipart/form-data` (even with no file): each
field a text part, `input_reference` a file part, `extra_body` values as more
text parts (ints as digits, booleans as `true`, dicts as `name[key]`). JSON
bodies are accepted too. Unknown fields are ignored, as OpenAI ignores them.

Seed parameters accepted beside OpenAI's: `duration` (alias of `seconds`),
`resolution` (alias of `size`; `size` and `resolution` both take the
shorthands in `SIZE_SHORTHANDS`), `negative_prompt`, `seed`, `style_preset`,
`camera_movement` and `callback_url`. Style presets and camera movements come
from the tables in `providers/video_hints.py`, which also writes them into the
prompt for backends without a native parameter.

Pure: no I/O. URLs (`callback_url`, `reference_url`) are checked for syntax
only; the caller resolves and SSRF-checks them.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import ApiError, bad_request
from gateway.protocol import json_object
from gateway.video import multipart
from providers import video_fit
from providers.base import SORA_SECONDS, SORA_SIZES  # noqa: F401 (the default when a model declares none)
from providers.media.sniff import image_type
from providers.video_hints import CAMERA_MOVEMENTS, STYLE_PRESETS, prompt_with_hints  # noqa: F401 (re-exported)

DEFAULT_MODEL = "sora-2"
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = "4"

SIZE_SHORTHANDS: dict[str, str] = {"480p": "854x480", "720p": "1280x720", "1080p": "1920x1080"}

MAX_PROMPT_CHARS = 32_000
MAX_NEGATIVE_PROMPT_CHARS = 2_000
MAX_SEED = 2**32 - 1
MAX_URL_CHARS = 2_048
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
# The HTTP layer may refuse earlier (413) on Content-Length; this is the backstop.
MAX_BODY_BYTES = MAX_REFERENCE_BYTES + 1024 * 1024
_MAX_FIELD_BYTES = 256 * 1024  # a text part: room for any valid prompt in UTF-8


@dataclass(frozen=True, slots=True)
class VideoRequest:
    prompt: str
    model: str
    seconds: str
    size: str
    width: int
    height: int
    negative_prompt: str | None = None
    seed: int | None = None
    style_preset: str | None = None
    camera_movement: str | None = None
    callback_url: str | None = None
    reference_image: bytes | None = field(default=None, repr=False)
    reference_media_type: str | None = None  # from the image's magic bytes, not the part's header
    reference_url: str | None = None  # not yet fetched nor SSRF-checked


@dataclass(frozen=True, slots=True)
class _Upload:
    data: bytes


# (native sizes, native seconds, whether other sizes and lengths are fitted: providers/video_fit.py)
Support = Callable[[str], tuple[Set[str], Set[str], bool]]


def parse_create(content_type: bytes, body: bytes, *,
                 sizes: Set[str] = SORA_SIZES, seconds: Set[str] = SORA_SECONDS, fits: bool = False,
                 support: Support | None = None) -> VideoRequest:
    """Validate a `POST /v1/videos` body against the routed model's sizes and
    seconds: `support(model)` gives them once the model is known (it may raise
    the model's 404), else `sizes`, `seconds` and `fits`. Where the model fits
    other sizes and lengths, any within video_fit's bounds is accepted."""
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body is {len(body)} bytes; POST /v1/videos accepts at most "
                            f"{MAX_BODY_BYTES} (input_reference images up to 10 MB).", code="request_too_large")
    media_type, params = multipart.content_type(content_type)
    if media_type == "application/json":
        fields: dict[str, Any] = json_object(body)
    elif media_type == "multipart/form-data":
        boundary = params.get("boundary", "")
        if not 1 <= len(boundary) <= 70:
            raise bad_request("The multipart/form-data Content-Type needs a boundary parameter "
                              "of 1 to 70 characters.")
        fields = _form_fields(multipart.split(body, boundary.encode("latin-1")))
    else:
        shown = media_type or "(none)"
        raise bad_request(f"Unsupported Content-Type '{shown}' for POST /v1/videos; "
                          "send multipart/form-data (as the OpenAI SDK does) or application/json.")
    return _request(fields, sizes, seconds, fits, support)


# --- fields -> VideoRequest ---------------------------------------------------

def _request(fields: dict[str, Any], sizes: Set[str], allowed_seconds: Set[str], fits: bool,
             support: Support | None = None) -> VideoRequest:
    fields = {k: v for k, v in fields.items() if v is not None}
    prompt = _text(fields, "prompt", MAX_PROMPT_CHARS, required=True)
    assert prompt is not None
    model = fields.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' must be a non-empty string.", param="model")
    if support is not None:
        sizes, allowed_seconds, fits = support(model)

    seconds_given = _aliased(fields, "seconds", "duration", _seconds)
    size_given = _aliased(fields, "size", "resolution", _size)
    if fits:    # any size and length within the bounds: the backend's nearest, made to fit
        secs = _within_length(seconds_given, allowed_seconds, model)
        size = _within_size(size_given, sizes, model)
    else:
        by_value = sorted(allowed_seconds, key=int)
        secs = _allowed(seconds_given, allowed_seconds,
                        DEFAULT_SECONDS if DEFAULT_SECONDS in allowed_seconds else by_value[0],
                        f"Supported values for model '{model}' are: " + ", ".join(f"'{s}'" for s in by_value))
        by_area = sorted(sizes, key=_area)
        size = _allowed(size_given, sizes, DEFAULT_SIZE if DEFAULT_SIZE in sizes else by_area[0],
                        f"Supported sizes for model '{model}' are: " + ", ".join(by_area))
    width, height = (int(n) for n in size.split("x"))

    image, media_type, url = _reference(fields.get("input_reference"))
    return VideoRequest(
        prompt=prompt, model=model, seconds=secs, size=size, width=width, height=height,
        negative_prompt=_text(fields, "negative_prompt", MAX_NEGATIVE_PROMPT_CHARS) or None,
        seed=_seed(fields.get("seed")),
        style_preset=_choice(fields, "style_preset", STYLE_PRESETS),
        camera_movement=_choice(fields, "camera_movement", CAMERA_MOVEMENTS),
        callback_url=None if "callback_url" not in fields else _http_url(fields["callback_url"], "callback_url"),
        reference_image=image, reference_media_type=media_type, reference_url=url,
    )


def _text(fields: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = fields.get(name)
    if value is None:
        if required:
            raise bad_request(f"Missing required parameter: '{name}'.", param=name)
        return None
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string.", param=name)
    if required and not value.strip():
        raise bad_request(f"'{name}' must not be empty.", param=name)
    if len(value) > limit:
        raise bad_request(f"'{name}' is {len(value)} characters long; the maximum is {limit}.", param=name)
    return value


def _aliased(fields: dict[str, Any], name: str, alias: str,
             parse: Callable[[Any, str], str]) -> tuple[str, str] | None:
    """(normalised value, the name the client used), or None when neither was given."""
    given = [(parse(fields[n], n), n) for n in (name, alias) if n in fields]
    if len(given) == 2 and given[0][0] != given[1][0]:
        raise bad_request(f"'{alias}' is an alias of '{name}', and they were given different values: "
                          f"'{given[0][0]}' and '{given[1][0]}'. Send one of them.", param=alias)
    return given[0] if given else None


def _allowed(given: tuple[str, str] | None, allowed: Set[str], default: str, supported: str) -> str:
    if given is None:
        return default
    value, param = given
    if value not in allowed:
        raise bad_request(f"Invalid value for '{param}': '{value}'. {supported}.", param=param)
    return value


def _within_length(given: tuple[str, str] | None, native: Set[str], model: str) -> str:
    if given is None:
        return DEFAULT_SECONDS
    value, param = given
    if value not in native and int(value) > video_fit.MAX_SECONDS:
        raise bad_request(f"Invalid value for '{param}': '{value}'. Model '{model}' makes videos of 1 to "
                          f"{video_fit.MAX_SECONDS} seconds.", param=param)
    return value


def _within_size(given: tuple[str, str] | None, native: Set[str], model: str) -> str:
    if given is None:
        return DEFAULT_SIZE
    value, param = given
    why = None if value in native else video_fit.bounds_problem(*video_fit.size_of(value))
    if why is not None:
        raise bad_request(f"Invalid value for '{param}': '{value}'. Model '{model}' makes any WIDTHxHEIGHT "
                          f"where {why}; e.g. 1280x720, 720x1280, 1792x1024, 1920x1080.", param=param)
    return value


def _seconds(value: Any, param: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request(f"'{param}' must be a whole number of seconds, as a string or integer.", param=param)
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", text):
        too_long = re.fullmatch(r"[+-]?[0-9]+", text) is not None
        reason = "is too large" if too_long else "must be a whole number of seconds"
        raise bad_request(f"'{param}' {reason}; got '{text[:20]}'.", param=param)
    n = int(text)
    if n <= 0:
        raise bad_request(f"'{param}' must be a positive number of seconds; got {n}.", param=param)
    return str(n)


def _size(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be a string such as '1280x720'.", param=param)
    text = value.strip().lower()
    text = SIZE_SHORTHANDS.get(text, text)
    m = re.fullmatch(r"([0-9]{1,5})x([0-9]{1,5})", text)
    if not m or int(m[1]) == 0 or int(m[2]) == 0:
        shorthands = ", ".join(SIZE_SHORTHANDS)
        raise bad_request(f"'{param}' must be WIDTHxHEIGHT (e.g. '1280x720') or one of {shorthands}; "
                          f"got '{value[:40]}'.", param=param)
    return f"{int(m[1])}x{int(m[2])}"


def _area(size: str) -> tuple[int, int]:
    w, h = (int(n) for n in size.split("x"))
    return w * h, w


def _seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise bad_request(f"'seed' must be an integer from 0 to {MAX_SEED}.", param="seed")
    return value


def _choice(fields: dict[str, Any], name: str, table: Mapping[str, str]) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    key = value.strip().lower().replace("_", "-").replace(" ", "-") if isinstance(value, str) else None
    if key not in table:
        raise bad_request(f"Invalid value for '{name}': {str(value)[:40]!r}. Allowed values: "
                          f"{', '.join(table)}.", param=name)
    return key


def _http_url(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"'{param}' must be an http or https URL.", param=param)
    if len(value) > MAX_URL_CHARS or re.search(r"[\x00-\x20\x7f]", value):
        raise bad_request(f"'{param}' must be an http or https URL of at most {MAX_URL_CHARS} "
                          "characters, with no spaces or control characters.", param=param)
    try:
        parts = urlsplit(value)
        _ = parts.port     # raises on a malformed port
    except ValueError:
        raise bad_request(f"'{param}' is not a valid URL.", param=param) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise bad_request(f"'{param}' must be an http or https URL with a host.", param=param)
    return value


# --- input_reference ----------------------------------------------------------

_NAME = "input_reference"


def _reference(value: Any) -> tuple[bytes | None, str | None, str | None]:
    """(image bytes, media type, URL to fetch): at most one of image and URL."""
    if value is None:
        return None, None, None
    if isinstance(value, _Upload):
        return _image(value.data), media_type_of(value.data), None
    if isinstance(value, dict):
        if "file_id" in value:
            raise bad_request("input_reference.file_id is not supported by this gateway; upload the "
                              "image as input_reference or pass input_reference.image_url.", param=_NAME)
        if set(value) != {"image_url"}:
            raise bad_request("input_reference must be an image upload, a URL, or an object with "
                              "image_url.", param=_NAME)
        value = value["image_url"]
    if not isinstance(value, str):
        raise bad_request("input_reference must be an image upload, a URL, or an object with "
                          "image_url.", param=_NAME)
    if value[:5].lower() == "data:":
        data = _data_url(value)
        return _image(data), media_type_of(data), None
    return None, None, _http_url(value, _NAME)


def _data_url(url: str) -> bytes:
    head, sep, payload = url.partition(",")
    if not sep or not head.lower().endswith(";base64"):
        raise bad_request("input_reference data URLs must be base64: 'data:image/png;base64,...'.", param=_NAME)
    if len(payload) > (MAX_REFERENCE_BYTES * 4) // 3 + 4:
        raise bad_request("input_reference is larger than 10 MB.", param=_NAME)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("input_reference is not valid base64.", param=_NAME) from None


def _image(data: bytes) -> bytes:
    if not data:
        raise bad_request("input_reference is empty.", param=_NAME)
    if len(data) > MAX_REFERENCE_BYTES:
        raise bad_request(f"input_reference is {len(data)} bytes; the maximum is {MAX_REFERENCE_BYTES} "
                          "(10 MB).", param=_NAME)
    if media_type_of(data) is None:
        raise bad_request("input_reference must be a PNG, JPEG or WEBP image.", param=_NAME)
    return data


def media_type_of(data: bytes) -> str | None:
    """PNG, JPEG or WEBP (what image inputs take; not GIF), from the bytes."""
    kind = image_type(data)
    return kind if kind != "image/gif" else None


_KNOWN = frozenset({"prompt", "model", "seconds", "duration", "size", "resolution", "negative_prompt",
                    "seed", "style_preset", "camera_movement", "callback_url", _NAME})
_NESTED = re.compile(r"input_reference\[(\w+)\]")


def _form_fields(parts: list[multipart.Part]) -> dict[str, Any]:
    """Form parts as the JSON body would carry them: text as str, files as _Upload."""
    fields: dict[str, Any] = {}
    reference: dict[str, str] = {}
    for part in parts:
        nested = _NESTED.fullmatch(part.name)
        if part.name not in _KNOWN and not nested:
            continue  # unknown fields are ignored, as OpenAI ignores them
        repeated = nested[1] in reference if nested else part.name in fields
        if repeated or (_NAME in fields and nested) or (part.name == _NAME and reference):
            raise bad_request(f"'{part.name}' was given more than once.", param=_NAME if nested else part.name)
        if part.filename is not None and part.name == _NAME:
            if len(part.data) > MAX_REFERENCE_BYTES:
                raise bad_request(f"input_reference is {len(part.data)} bytes; the maximum is "
                                  f"{MAX_REFERENCE_BYTES} (10 MB).", param=_NAME)
            fields[_NAME] = _Upload(part.data)
            continue
        if len(part.data) > _MAX_FIELD_BYTES:
            raise bad_request(f"'{part.name}' is larger than {_MAX_FIELD_BYTES} bytes.", param=part.name)
        try:
            text = part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request(f"'{part.name}' is not valid UTF-8 text.", param=part.name) from None
        if nested:
            reference[nested[1]] = text
        else:
            fields[part.name] = text
    if reference:
        fields[_NAME] = reference
    return fields


# --- remix, edits, extensions ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceRequest:
    """A job made from an existing video: remix (`POST /v1/videos/{id}/remix`),
    edit (`/v1/videos/edits`) or extend (`/v1/videos/extensions`)."""
    prompt: str
    video_id: str | None          # None for remix: the id is in the path
    seconds: str | None = None    # extend: the length of the new segment
    callback_url: str | None = None


def parse_source(content_type: bytes, body: bytes, *, needs_video: bool, needs_seconds: bool) -> SourceRequest:
    """The body of a remix, edit or extension: JSON or multipart, as the SDK sends
    them (`video` as `{"id": ...}` JSON, or `video[id]` form fields). Uploading a
    source video file is refused: the source must be a video this gateway made."""
    media_type, params = multipart.content_type(content_type)
    if media_type == "multipart/form-data":
        boundary = params.get("boundary", "")
        if not 1 <= len(boundary) <= 70:
            raise bad_request("The multipart/form-data Content-Type needs a boundary parameter "
                              "of 1 to 70 characters.")
        fields: dict[str, Any] = {}
        for part in multipart.split(body, boundary.encode("latin-1")):
            if part.name == "video" and part.filename is not None:
                raise bad_request("Uploading a source video is not supported; pass the id of a video this "
                                  "gateway made, as video={'id': 'video_...'}.", param="video")
            if part.name in ("prompt", "seconds", "callback_url", "video", "video[id]"):
                fields[part.name] = part.data.decode("utf-8", "replace")
        if "video[id]" in fields:
            fields["video"] = {"id": fields.pop("video[id]")}
    elif media_type == "application/json" or not media_type:
        fields = json_object(body)
    else:
        raise bad_request(f"Unsupported Content-Type '{media_type}'; send application/json or "
                          "multipart/form-data.")
    prompt = _text(fields, "prompt", MAX_PROMPT_CHARS, required=True)
    assert prompt is not None
    video_id = None
    if needs_video:
        video = fields.get("video")
        video_id = video.get("id") if isinstance(video, dict) else video
        if not isinstance(video_id, str) or not video_id:
            raise bad_request("Missing required parameter: 'video' (an object with the id of the source "
                              "video).", param="video")
    seconds = None
    if needs_seconds:
        if "seconds" not in fields:
            raise bad_request("Missing required parameter: 'seconds'.", param="seconds")
        seconds = _seconds(fields["seconds"], "seconds")
    callback = fields.get("callback_url")
    return SourceRequest(prompt, video_id, seconds,
                         None if callback is None else _http_url(callback, "callback_url"))
