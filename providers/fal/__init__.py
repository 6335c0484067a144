"""`type: fal`: video models on fal.ai's queue (Kling, Veo, LTX, Wan, ...).
Wire format and what is sent per model in translate.py."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from providers import hosted_video
from providers.base import Progress, VideoFiles, VideoSpec
from providers.errors import ProviderError
from providers.fal import translate
from providers.http import HttpProvider, UpstreamRequest

log = logging.getLogger("gateway.video")


class FalProvider(HttpProvider):
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
        o = self.options

        async def check() -> hosted_video.Polled:
            polled = translate.read_status(await self._call(translate.status_request(o, state)),
                                           provider=self.name)
            if polled.status != "completed":
                return polled
            resp = await self.upstream.send(translate.response_request(o, state))
            body = await (self.upstream.read_error(resp) if resp.status >= 300 else self.upstream.read(resp))
            return translate.read_result(resp.status, body, resp.headers, provider=self.name, secret=o.api_key)

        done = await hosted_video.poll(check, hosted_video.rising(progress), o, self.name)
        mp4 = await hosted_video.fetch(self.upstream, UpstreamRequest(done.result, b"", {}, "GET"), self.error)
        return VideoFiles(mp4=mp4)

    async def video_cancel(self, spec: VideoSpec, state: dict[str, Any]) -> None:
        req = translate.cancel_request(self.options, state)
        if req is None:
            return
        try:
            await self._call(req)
        except ProviderError as e:   # best effort: fal cancels only requests still in the queue
            log.info("provider '%s' did not cancel request %s: %s", self.name, state.get("request_id"), e.message)
