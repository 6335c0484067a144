"""What hosted video providers share: their options, polling an upstream job
with backoff until it ends, and fetching the finished file.

Each adapter (providers/openai/video.py, veo/, runway/, fal/, replicate/)
supplies the pure parts: the submit request, how to read a status answer into
`Polled`, and where the file is. The gateway copies the file into its own
asset store, so `content`, `video_url` and expiry behave the same whoever
generated it.
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from providers import http, netcheck
from providers.base import Progress, VideoFiles, VideoSpec
from providers.errors import ProviderError, RateLimited, UpstreamFault, UpstreamTimeout
from providers.http import HttpOptions, HttpProvider, Upstream, UpstreamRequest, origin
from providers.video_fit import VideoFit

log = logging.getLogger("gateway.video")

MAX_VIDEO_BYTES = 2 * 1024 * 1024 * 1024   # a finished file larger than this is refused
_TRANSIENT_POLL_FAILURES = 8                # in a row, before the job is failed


_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4, "21:9": 21 / 9}
def aspect_ratio(width: int, height: int) -> str:
    """The usual ratio name nearest `width`:`height` ("16:9" for 1280x720)."""
    g = math.gcd(width, height)
    exact = f"{width // g}:{height // g}"
    if exact in _RATIOS:
        return exact
    r = width / height
    return min(_RATIOS, key=lambda name: abs(math.log(_RATIOS[name] / r)))


def headers(authorization: str, o: HttpOptions, *, body: bool = True,
            more: Mapping[str, str] | None = None) -> dict[str, str]:
    """A call's headers: its authorization and `more`, JSON when it has a body, then the provider's own `headers`."""
    h = {"authorization": authorization, **(more or {})}
    if body:
        h["content-type"] = "application/json"
    h.update(o.headers)
    return h


class VideoHttpOptions(HttpOptions):
    """Options of every hosted video provider."""
    video_sizes: list[str] | None = None        # what its models generate; default: OpenAI's Sora sizes
    video_seconds: list[int] | None = None      # default: 4, 8, 12
    video_fit: VideoFit = "exact"               # other sizes and lengths: fitted (providers/video_fit.py) or 400
    poll_interval_s: float = Field(2.0, gt=0)   # first wait between status checks
    poll_max_interval_s: float = Field(15.0, gt=0)   # the backoff's ceiling
    max_wait_s: float = Field(3600.0, gt=0)     # a job still running after this has failed
    # File URLs the provider hands back may point at private, loopback or
    # link-local (metadata) addresses only when this is on; its own origin is trusted.
    allow_private_downloads: bool = False


VideoOptionsT = TypeVar("VideoOptionsT", bound=VideoHttpOptions)


def download_policy(o: VideoHttpOptions) -> dict[str, Any]:
    """`fetch`'s trust for a provider: its own API's origin and the redirects it may follow."""
    return {"trusted": [o.base_url, *o.follow_redirects] if o.base_url else o.follow_redirects,
            "allow_private": o.allow_private_downloads}


@dataclass(slots=True)
class Polled:
    """One status check of an upstream job, in the gateway's terms."""
    status: str                        # "queued" | "in_progress" | "completed" | "failed"
    progress: int | None = None        # 0..100 when the provider reports it
    error: ProviderError | None = None # why it failed (status "failed")
    result: Any = None                 # completed: what `fetch` needs (e.g. the file's URL)


async def poll(check: Callable[[], Awaitable[Polled]], progress: Progress, options: VideoHttpOptions,
               provider: str) -> Polled:
    """Call `check` until the job completes (returned) or fails (its error raised),
    waiting `poll_interval_s`, growing 1.5x up to `poll_max_interval_s`. A check
    that fails transiently (5xx, timeout, 429) is retried on the same schedule;
    eight in a row fail the job. Progress is reported only as it rises, so a
    provider whose figure wobbles never moves the job backwards."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + options.max_wait_s
    delay = options.poll_interval_s
    failures = 0
    reported = -1
    while True:
        try:
            polled = await check()
        except (UpstreamFault, UpstreamTimeout, RateLimited) as e:
            failures += 1
            if failures >= _TRANSIENT_POLL_FAILURES:
                raise
            wait = e.retry_after if isinstance(e, RateLimited) and e.retry_after else delay
            await asyncio.sleep(min(wait, options.poll_max_interval_s))
            delay = min(delay * 1.5, options.poll_max_interval_s)
            continue
        failures = 0
        if polled.progress is not None:
            pct = max(0, min(100, polled.progress))
            if pct > reported:
                reported = pct
                await progress(pct)
        if polled.status == "completed":
            return polled
        if polled.status == "failed":
            raise polled.error or UpstreamFault(f"provider '{provider}' reported the video failed",
                                                provider=provider, code="video_generation_failed")
        if loop.time() >= give_up:
            raise UpstreamTimeout(f"provider '{provider}' did not finish the video within "
                                  f"{options.max_wait_s:g}s", provider=provider)
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, options.poll_max_interval_s)


async def fetch(upstream: Upstream, req: UpstreamRequest, error: Callable[[int, bytes, Any], ProviderError],
                max_bytes: int = MAX_VIDEO_BYTES, *, trusted: Iterable[str] = (),
                allow_private: bool = False) -> bytes:
    """GET a finished file, following redirects (signed storage URLs need them).
    The provider named the URL, so every hop outside `trusted` origins (its own
    API) goes through the SSRF check, and the request's headers (its
    credentials) never go to an origin other than the first."""
    trusted = frozenset(origin(o) for o in trusted)
    first = origin(req.url)
    for _ in range(http.MAX_HOPS + 1):
        if origin(req.url) not in trusted:
            await _check_download(upstream.provider, req.url, allow_private)
        resp = await upstream.open(req, guarded=not allow_private and origin(req.url) not in trusted)
        if resp.status not in http.REDIRECTS:
            break
        resp.release()
        target = http.redirect_target(req.url, resp.headers.get("location", ""))
        if target is None:
            raise upstream.redirect_fault(resp.status)
        req = http.redirected(req, resp.status, target)
        if origin(target) != first:
            req.headers = {}
    else:
        raise upstream.redirect_fault(resp.status)
    if resp.status >= 300:
        raise error(resp.status, await upstream.read_error(resp), resp.headers)
    if resp.content_length is not None and resp.content_length > max_bytes:
        resp.release()
        raise UpstreamFault(f"provider '{upstream.provider}' sent a {resp.content_length}-byte video; "
                            f"the most the gateway keeps is {max_bytes}", provider=upstream.provider)
    data = bytearray()
    async for chunk in upstream.chunks(resp):
        data += chunk
        if len(data) > max_bytes:
            raise UpstreamFault(f"provider '{upstream.provider}' sent a video over {max_bytes} bytes",
                                provider=upstream.provider)
    return bytes(data)


async def _check_download(provider: str, url: str, allow_private: bool) -> None:
    try:
        await netcheck.check_url(url, allow_private=allow_private)
    except netcheck.BlockedURL as e:
        raise UpstreamFault(f"provider '{provider}' gave a file URL the gateway may not fetch: {e}",
                            provider=provider, code="upstream_url_refused") from None


def rising(progress: Progress) -> Progress:
    """`progress` that never goes back: some upstreams report a lower figure
    later (a second progress bar in the logs, a retried attempt)."""
    best = -1

    async def report(pct: int) -> None:
        nonlocal best
        if pct > best:
            best = pct
            await progress(pct)

    return report


class HostedVideoProvider(HttpProvider[VideoOptionsT]):
    """A hosted video API that submits, polls a status URL and hands back a file
    URL: the exchange, around a `translate` module of pure functions
    (`submit_request`, `submit_state`, `status_request`, `read_status`,
    `cancel_request`, `parse_error`). An adapter sets `translate` and `Options`,
    and overrides `check` where a status check takes more than one call."""

    secret_field = "api_key"
    operations = frozenset({"video"})
    video_ops = frozenset({"create"})
    translate: ClassVar[ModuleType]

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return self.translate.parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)

    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        body = await self.roundtrip(self.translate.submit_request(self.options, spec))
        return self.translate.submit_state(body, provider=self.name)

    def own(self, req: UpstreamRequest) -> UpstreamRequest:
        """`req`, if it goes to the provider's own origin: a status or result URL
        the upstream handed back must not take the credentials anywhere else."""
        if origin(req.url) not in self._own_origins:
            raise UpstreamFault(f"provider '{self.name}' handed back a URL on another origin; its credentials "
                                "go only to base_url's origin and those in follow_redirects",
                                provider=self.name, code="upstream_url_refused")
        return req

    @property
    def _own_origins(self) -> frozenset[str]:
        return frozenset(origin(o) for o in download_policy(self.options)["trusted"])

    async def check(self, state: dict[str, Any]) -> Polled:
        body = await self.roundtrip(self.own(self.translate.status_request(self.options, state)))
        return self.translate.read_status(body, provider=self.name)

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        done = await poll(lambda: self.check(state), rising(progress), self.options, self.name)
        # The file URL is signed or public: no credentials go with it.
        return VideoFiles(mp4=await fetch(self.upstream, UpstreamRequest(done.result, b"", {}, "GET"), self.error,
                                          **download_policy(self.options)))

    async def video_cancel(self, spec: VideoSpec, state: dict[str, Any]) -> None:
        req = self.translate.cancel_request(self.options, state)
        if req is None:
            return
        try:
            await self.roundtrip(self.own(req))
        except ProviderError as e:   # best effort: the job may be finished or gone already
            log.info("provider '%s' did not cancel job %s: %s", self.name, state, e.scrubbed(self.secrets).message)
