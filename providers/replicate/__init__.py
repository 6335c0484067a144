"""`type: replicate`: video models on Replicate (Kling, Veo, Hailuo, Wan, LTX, ...).
Wire format and what is sent per model in translate.py."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from providers import hosted_video
from providers.base import Progress, VideoFiles, VideoSpec
from providers.errors import ProviderError
from providers.http import HttpProvider, UpstreamRequest
from providers.replicate import translate

log = logging.getLogger("gateway.video")


class ReplicateProvider(HttpProvider):
    Options = translate.Options
    secret_field = "api_key"
    operations = frozenset({"video"})
    video_ops = frozenset({"create"})

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return translate.parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)

    async def _call(self, req: UpstreamRequest) -> bytes:
        resp = await self.upstream.send(req)
        if resp.status >= 300:
            raise self.error(resp.status, await self.upstream.read_error(resp), resp.headers)
        return await self.upstream.read(resp)

    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        body = await self._call(translate.submit_request(self.options, spec))
        return translate.submit_state(body, provider=self.name)

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        async def check() -> hosted_video.Polled:
            body = await self._call(translate.status_request(self.options, state))
            return translate.read_status(body, provider=self.name)

        done = await hosted_video.poll(check, hosted_video.rising(progress), self.options, self.name)
        mp4 = await hosted_video.fetch(self.upstream, UpstreamRequest(done.result, b"", {}, "GET"), self.error)
        return VideoFiles(mp4=mp4)

    async def video_cancel(self, spec: VideoSpec, state: dict[str, Any]) -> None:
        try:
            await self._call(translate.cancel_request(self.options, state))
        except ProviderError as e:   # best effort: the prediction may be finished already
            log.info("provider '%s' did not cancel prediction %s: %s", self.name, state.get("id"), e.message)
