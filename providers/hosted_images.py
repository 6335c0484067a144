"""What hosted image backends (Gemini, fal, Replicate) share on the way to
OpenAI's images answer: the request's size as the aspect ratios they take,
uploads as data URIs, the answer itself, and each image a backend hands back
as a URL fetched through the same download path and SSRF policy as a hosted
video's file (providers/hosted_video.py: `fetch`, `download_policy`).

Bounds: at most the `n` the client asked for come back, each image at most
MAX_IMAGE_BYTES; the whole call runs inside the router's per-attempt deadline,
so polling and downloads end with the request."""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

import orjson

from providers.base import Upload
from providers.errors import ProviderError, UpstreamFault
from providers.hosted_video import HostedVideoProvider, VideoHttpOptions, download_policy, fetch
from providers.http import Upstream, UpstreamRequest
from providers.media.sniff import image_type

MAX_IMAGE_BYTES = 32 * 1024 * 1024      # one image a backend hands back
T = TypeVar("T")
log = logging.getLogger("gateway.providers")
_CANCELLING: set[asyncio.Task] = set()  # cancels under way, held until they end

_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


def requested_size(data: dict[str, Any]) -> tuple[int, int] | None:
    """The client's `size` as (width, height); None for "auto" or none (the backend's default)."""
    size = data.get("size")
    if isinstance(size, str) and "x" in size:
        w, _, h = size.partition("x")
        if w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0:
            return int(w), int(h)
    return None


def nearest_ratio(width: int, height: int, ratios: Iterable[str]) -> str:
    """The ratio ("16:9", ...) of `ratios` nearest width:height, compared on a log scale
    (so 2:1 is as far from 1:1 as 1:2 is)."""
    r = width / height

    def distance(name: str) -> float:
        a, _, b = name.partition(":")
        return abs(math.log(int(a) / int(b) / r))

    return min(ratios, key=distance)




def data_uri(upload: Upload) -> str:
    """An uploaded file as a base64 `data:` URI (fal and Replicate take them wherever they take a file URL)."""
    return f"data:{upload.media_type};base64,{base64.b64encode(upload.data).decode()}"


def from_data_uri(uri: str, *, provider: str) -> bytes:
    """The bytes of a base64 `data:` URI a backend answered with (at most MAX_IMAGE_BYTES)."""
    head, sep, payload = uri.partition(",")
    if not sep or not head.endswith(";base64") or len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise UpstreamFault(f"provider '{provider}' answered with a data URI that is not a base64 image "
                            f"of at most {MAX_IMAGE_BYTES} bytes", provider=provider, code="upstream_malformed")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamFault(f"provider '{provider}' answered with a data URI that is not base64",
                            provider=provider, code="upstream_malformed") from None


def answer(images: Sequence[bytes], *, revised: Sequence[str | None] = (),
           usage: dict[str, Any] | None = None) -> bytes:
    """OpenAI's images answer: each image as `b64_json` (and its `revised_prompt` where the
    backend wrote one), `output_format` from the first image's bytes, `usage` where counted."""
    items: list[dict[str, Any]] = []
    for i, image in enumerate(images):
        item: dict[str, Any] = {"b64_json": base64.b64encode(image).decode()}
        if i < len(revised) and revised[i]:
            item["revised_prompt"] = revised[i]
        items.append(item)
    doc: dict[str, Any] = {"created": int(time.time()), "data": items}
    fmt = _FORMATS.get(image_type(images[0]) or "") if images else None
    if fmt:
        doc["output_format"] = fmt
    if usage is not None:
        doc["usage"] = usage
    return orjson.dumps(doc)


def not_images(images: Sequence[bytes]) -> int | None:
    """The index of the first item that is not a PNG, JPEG, WEBP or GIF file, or None."""
    return next((i for i, image in enumerate(images) if image_type(image) is None), None)


async def all_of(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Run `calls` at once; the first to fail cancels the others and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(c)) for c in calls]
    except BaseExceptionGroup as eg:
        first = next((e for e in eg.exceptions if isinstance(e, ProviderError)), None)
        if first is not None:
            raise first from None
        raise
    return [t.result() for t in tasks]


async def _awaited(call: Awaitable[T]) -> T:
    return await call


async def images_at(provider: HostedVideoProvider, urls: Sequence[str], options: VideoHttpOptions,
                    job: str) -> bytes:
    """OpenAI's answer of the images a finished `job` ("request", "prediction") points at, fetched."""
    if not urls:
        raise provider.upstream.malformed(f"finished the {job} without any image")
    made = await download(provider.upstream, urls, options)
    bad = not_images(made)
    if bad is not None:
        raise provider.upstream.malformed(f"handed back image {bad + 1} not as a PNG, JPEG, WEBP or GIF file")
    return answer(made)


async def download(upstream: Upstream, urls: Sequence[str], options: VideoHttpOptions) -> list[bytes]:
    """Each image the backend named: a `data:` URI decoded, a URL fetched as a hosted video's file is
    (no credentials go with it; any origin other than the provider's own passes the SSRF check)."""
    provider = upstream.provider

    def refused(status: int, body: bytes, headers: Any) -> ProviderError:
        return UpstreamFault(f"provider '{provider}' made the image, but its file answered {status}",
                             provider=provider, upstream_status=status)

    async def one(url: str) -> bytes:
        if url.startswith("data:"):
            return from_data_uri(url, provider=provider)
        return await fetch(upstream, UpstreamRequest(url, b"", {}, "GET"), refused, MAX_IMAGE_BYTES,
                           **download_policy(options))

    return await all_of(one(u) for u in urls)


async def no_progress(pct: int) -> None:
    """Polling an image job reports no progress anywhere."""


def cancel_later(provider: HostedVideoProvider, state: dict[str, Any]) -> None:
    """Cancel an image job on a queue in the background, best effort (the task that
    submitted it is being cancelled itself, or gave up on it)."""
    req = provider.translate.cancel_request(provider.options, state)
    if req is None:
        return

    async def cancel() -> None:
        try:
            await provider.roundtrip(provider.own(req))
        except ProviderError as e:     # it may have finished already
            log.info("provider '%s' did not cancel image job %s: %s", provider.name, state,
                     e.scrubbed(provider.secrets).message)

    task = asyncio.get_running_loop().create_task(cancel())
    _CANCELLING.add(task)
    task.add_done_callback(_CANCELLING.discard)
