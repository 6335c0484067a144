"""OpenAI's Images API on Google's Gemini API, as pure functions.

Wire format, as relied on here (ai.google.dev/gemini-api/docs/imagen and
/image-generation; googleapis/python-genai models.py: `_GenerateImagesConfig_to_mldev`,
`_GeneratedImage_from_mldev`, `_ImageConfig_to_mldev`):

- Imagen (models named `imagen-*`): `POST {base}/models/{model}:predict` with
  `{"instances": [{"prompt"}], "parameters": {"sampleCount": 1-4, "aspectRatio":
  "1:1"|"3:4"|"4:3"|"9:16"|"16:9", "personGeneration"?, "sampleImageSize"?: "1K"|"2K",
  "outputOptions"?: {"mimeType", "compressionQuality"}, "includeRaiReason": true}}`;
  answers `{"predictions": [{"bytesBase64Encoded", "mimeType", "prompt"?} |
  {"raiFilteredReason"}]}` (`prompt`: the prompt as Imagen rewrote it). Imagen
  does not edit through this API.
- Gemini image output (`gemini-2.5-flash-image` and the like):
  `POST {base}/models/{model}:generateContent` with `{"contents": [{"role": "user",
  "parts": [{"text"}, {"inline_data": {"mime_type", "data"}}...]}], "generationConfig":
  {"responseModalities": ["IMAGE"], "imageConfig"?: {"aspectRatio"}}}`; the images are
  the `inlineData {mimeType, data}` parts of `candidates[0].content`, the tokens in
  `usageMetadata`. One call makes one image, so `n` images are `n` calls.

OpenAI's `size` becomes the nearest aspect ratio the model takes (on a log
scale: 1024x1536 is 2:3 for Gemini, 3:4 for Imagen); "auto" or no size leaves
the model's default (square; for an edit, the input's shape).
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import orjson

from providers.base import Upload, Usage
from providers.errors import BadRequest
from providers.gemini.answer import read_usage
from providers.hosted_images import nearest_ratio, requested_size
from providers.http import json_object

IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGEN_MOST_PER_CALL = 4
_IMAGEN_1K_LONG_SIDE = 1408      # Imagen 4's 1K sizes run to 1408x768; past that, 2K
_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                       "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})


def is_imagen(model: str) -> bool:
    return model.rsplit("/", 1)[-1].startswith("imagen")


# --- Imagen ---------------------------------------------------------------------

def imagen_batches(model: str, n: int) -> list[int]:
    """`n` images as sampleCounts, one call each: up to 4 a call (Imagen 4 Ultra: 1)."""
    most = 1 if "ultra" in model else IMAGEN_MOST_PER_CALL
    return [min(most, n - i) for i in range(0, n, most)]


def imagen_body(data: dict[str, Any], model: str, count: int, *, person_generation: str | None = None) -> bytes:
    parameters: dict[str, Any] = {"sampleCount": count, "includeRaiReason": True}
    size = requested_size(data)
    if size is not None:
        parameters["aspectRatio"] = nearest_ratio(*size, IMAGEN_RATIOS)
        name = model.rsplit("/", 1)[-1]
        if name.startswith("imagen-4") and "fast" not in name:     # Imagen 4 and 4 Ultra: 1K or 2K
            parameters["sampleImageSize"] = "2K" if max(size) > _IMAGEN_1K_LONG_SIDE else "1K"
    if person_generation:
        parameters["personGeneration"] = person_generation
    if data.get("output_format") == "jpeg":        # PNG otherwise (Imagen makes no WEBP)
        options: dict[str, Any] = {"mimeType": "image/jpeg"}
        if isinstance(data.get("output_compression"), int):
            options["compressionQuality"] = data["output_compression"]
        parameters["outputOptions"] = options
    return orjson.dumps({"instances": [{"prompt": data["prompt"]}], "parameters": parameters})


def read_imagen(body: bytes, *, provider: str) -> tuple[list[bytes], list[str | None]]:
    """The images of a `predict` answer and the prompt each was made from, as Imagen rewrote it.
    None of them, only filtered ones: the prompt's fault (400). None at all: an empty list."""
    doc = json_object(body, provider)
    predictions = doc.get("predictions")
    images: list[bytes] = []
    prompts: list[str | None] = []
    reasons: list[str] = []
    for p in predictions if isinstance(predictions, list) else []:
        if not isinstance(p, dict):
            continue
        data = _b64(p.get("bytesBase64Encoded"))
        if data is not None:
            images.append(data)
            prompts.append(p["prompt"] if isinstance(p.get("prompt"), str) else None)
        elif isinstance(p.get("raiFilteredReason"), str):
            reasons.append(p["raiFilteredReason"])
    if not images and reasons:
        raise BadRequest(f"provider '{provider}' (Imagen) filtered every image: {reasons[0]}", provider=provider,
                         param="prompt", code="content_filter")
    return images, prompts


# --- Gemini image output ------------------------------------------------------------

def generate_body(data: dict[str, Any], model: str, uploads: Sequence[Upload] = ()) -> bytes:
    """A `generateContent` body for one image: the prompt, then any images to edit."""
    parts: list[dict[str, Any]] = [{"text": data["prompt"]}]
    parts += [{"inline_data": {"mime_type": u.media_type, "data": base64.b64encode(u.data).decode()}}
              for u in uploads]
    # gemini-2.0-flash's image preview answers only with text and image together
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"] if "2.0-flash" in model else ["IMAGE"]}
    size = requested_size(data)
    if size is not None:
        config["imageConfig"] = {"aspectRatio": nearest_ratio(*size, GEMINI_RATIOS)}
    return orjson.dumps({"contents": [{"role": "user", "parts": parts}], "generationConfig": config})


def read_generated(body: bytes, *, provider: str) -> tuple[list[bytes], Usage]:
    """The images in a `generateContent` answer's first candidate, and its tokens. A prompt or
    an image Gemini blocked is the request's fault (400); no image otherwise, an empty list."""
    doc = json_object(body, provider)
    usage, _ = read_usage(doc.get("usageMetadata"))
    feedback = doc.get("promptFeedback")
    blocked = feedback.get("blockReason") if isinstance(feedback, dict) else None
    candidates = doc.get("candidates")
    candidate = candidates[0] if isinstance(candidates, list) and candidates else None
    if not isinstance(candidate, dict):
        if blocked:
            raise BadRequest(f"provider '{provider}' (Gemini) blocked the prompt: {blocked}", provider=provider,
                             param="prompt", code="content_filter")
        return [], usage
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    images = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("thought"):
            continue
        inline = part.get("inlineData") or part.get("inline_data")
        if isinstance(inline, dict):
            data = _b64(inline.get("data"))
            if data is not None:
                images.append(data)
    reason = candidate.get("finishReason")
    if not images and reason in _FILTERED:
        raise BadRequest(f"provider '{provider}' (Gemini) withheld the image: {reason}", provider=provider,
                         param="prompt", code="content_filter")
    return images, usage


def usage_json(usage: Usage) -> dict[str, Any]:
    """Gemini's tokens in gpt-image's `usage` shape."""
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
