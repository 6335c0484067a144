"""`type: veo`: Google's Veo video models through the Gemini API
(generativelanguage.googleapis.com), a long-running operation per video."""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from providers import hosted_video
from providers.base import Progress, VideoFiles, VideoSpec
from providers.errors import ProviderError
from providers.gemini.api import headers as gemini_headers
from providers.gemini.errors import parse_error
from providers.hosted_video import VideoHttpOptions
from providers.http import HttpProvider
from providers.veo import translate

log = logging.getLogger("gateway.providers")


class Options(VideoHttpOptions):
    base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    poll_interval_s: float = Field(10.0, gt=0)     # Veo takes minutes; Google's samples poll every 10 s
    send_seed: bool = False          # the Gemini API takes no `seed` (Vertex AI does): on for endpoints that do
    expected_s: float = Field(90.0, gt=0)   # how long a video usually takes: progress is estimated from it


_Options = Options   # in VeoProvider's body `Options` is the class attribute, not a type


class VeoProvider(HttpProvider[Options]):
    Options = Options
    secret_field = "api_key"
    operations = frozenset({"video"})
    video_ops = frozenset({"create"})

    def __init__(self, options: _Options) -> None:
        super().__init__(options)
        self._headers = gemini_headers(options)

    def video_support(self) -> tuple[frozenset[str], frozenset[str]]:
        o = self.options
        return (frozenset(o.video_sizes) if o.video_sizes else translate.VEO_SIZES,
                frozenset(str(s) for s in o.video_seconds) if o.video_seconds else translate.VEO_SECONDS)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)


    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        req = translate.submit_request(spec, self.options.base_url, self._headers,
                                       send_seed=self.options.send_seed, provider=self.name)
        state = translate.submitted(await self.roundtrip(req), provider=self.name)
        state["submitted_at"] = time.time()     # wall clock: the estimate survives a restart
        return state

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        name = state.get("operation")
        if not isinstance(name, str) or not name:
            raise ProviderError(f"provider '{self.name}': the job's operation name is missing",
                                provider=self.name, code="video_state_missing")
        o = self.options
        started = float(state.get("submitted_at") or time.time())
        status = translate.operation_request(o.base_url, self._headers, name)

        async def check() -> hosted_video.Polled:
            body = await self.roundtrip(status)
            estimate = translate.progress_estimate(time.time() - started, o.expected_s)
            return translate.polled(body, provider=self.name, estimate=estimate)

        done = await hosted_video.poll(check, progress, o, self.name)
        if isinstance(done.result, bytes):
            return VideoFiles(mp4=done.result)
        req = translate.download_request(done.result, o.base_url, self._headers)
        return VideoFiles(mp4=await hosted_video.fetch(self.upstream, req, self.error,
                                                       **hosted_video.download_policy(o)))

    async def video_cancel(self, spec: VideoSpec, state: dict[str, Any]) -> None:
        name = state.get("operation")
        if not name:
            return
        try:
            await self.roundtrip(translate.cancel_request(self.options.base_url, self._headers, name))
        except ProviderError as e:
            log.debug("provider %s: could not cancel %s: %s", self.name, name, e.scrubbed(self.secrets).message)
