"""`POST /v1/images/generations` and `POST /v1/images/edits`, as OpenAI's Images
API and the SDK's `client.images.generate` / `client.images.edit` expect them:
routed, limited, priced and failed over through the same exchange as chat.

Providers answer in OpenAI's shape with the images as `b64_json`, and the
client gets that, or with `response_format: "url"` signed links to the images
kept by the gateway (kept.py). The cost is the target's
`per_image` price (by quality and size) times the images, plus its token
prices where the provider counts tokens."""
from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.errors import ApiError
from gateway.exchange import AnswerDialect, Exchange, Inbound, Translation
from gateway.images import kept, protocol
from gateway.images.pricing import image_cost_nano
from gateway.video.api import public_url
from providers.base import Reply
from providers.openai.images import has_images

DEFAULT_MODEL = "gpt-image-1"


class ImageGenerations(AnswerDialect):
    """POST /v1/images/generations"""
    kind = "image"
    op = "images"
    endpoint = "images"
    cacheable = False

    def parse(self, body: bytes) -> Inbound:
        data = protocol.generation(body)
        return Inbound(data.get("model") or DEFAULT_MODEL, data, answer=Images(data))


class ImageEdits(ImageGenerations):
    """POST /v1/images/edits"""
    op = "image_edits"
    endpoint = "image_edits"
    form = True

    def parse(self, body: bytes) -> Inbound:
        raise ApiError(400, "POST /v1/images/edits takes multipart/form-data with the image as a file.",
                       code="invalid_request_error")

    def parse_form(self, content_type: bytes, body: bytes) -> Inbound:
        data = protocol.edit(content_type, body)
        return Inbound(data.get("model") or DEFAULT_MODEL, data, answer=Images(data))


GENERATIONS = ImageGenerations()
EDITS = ImageEdits()


class Images(Translation):
    """The provider's images answer, checked, priced, and with `url` asked for, its images kept here."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    async def whole(self, x: Exchange, reply: Reply) -> bytes:
        doc = _images_answer(reply.body, x.provider)
        items = doc["data"]
        price = x.target.price if x.target is not None else None
        x.cost += image_cost_nano(price, len(items), self.data.get("quality"), self.data.get("size"))
        if self.data.get("response_format") == "url":
            await kept.keep(x.rt, public_url(x.req, x.rt), items, x.provider)
            return orjson.dumps(doc)
        return reply.body

    async def stream(self, x: Exchange, reply: Reply, first: bytes) -> AsyncGenerator[bytes, None]:
        raise ApiError(400, "Streamed image generation is not supported by this gateway.", param="stream")
        yield b""    # unreachable: makes this an async generator, as Translation wants

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        return b""


def _images_answer(body: bytes, provider: str) -> dict[str, Any]:
    """The provider's images answer (adapters check it before it counts as answered, so one
    that is not an answer has failed over already; this is the last guard)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not has_images(doc):
        raise ApiError(502, f"Provider '{provider}' answered without images.", type="server_error",
                       code="upstream_malformed")
    return doc
