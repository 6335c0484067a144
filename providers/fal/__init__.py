"""`type: fal`: video models on fal.ai's queue (Kling, Veo, LTX, Wan, ...), and image
models on the same queue (FLUX, Kontext, Imagen, ...). Wire format and what is sent per
model in translate.py (video) and images.py."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any, ClassVar

from providers import hosted_images
from providers.base import Call, Reply
from providers.errors import UpstreamTimeout
from providers.fal import images, translate
from providers.hosted_video import HostedVideoProvider, Polled, poll


class FalProvider(HostedVideoProvider[translate.Options]):
    Options = translate.Options
    translate: ClassVar[ModuleType] = translate   # annotated: a bare module assignment is an alias to mypy
    operations = frozenset({"video", "images"})

    async def check(self, state: dict[str, Any]) -> Polled:
        """The status URL says COMPLETED; the result (the file's URL, or why it
        failed) is at the response URL."""
        polled = await super().check(state)
        if polled.status != "completed":
            return polled
        resp = await self.upstream.send(self.own(translate.response_request(self.options, state)))
        body = await (self.upstream.read_error(resp) if resp.status >= 300 else self.upstream.read(resp))
        return translate.read_result(resp.status, body, resp.headers, provider=self.name, secret=self.options.api_key)

    # -- images ----------------------------------------------------------------

    async def images(self, call: Call) -> Reply:
        """Queued like a video; the finished images fetched and answered as OpenAI's `b64_json`.
        A request cut short (the deadline, the client gone) is cancelled on the queue."""
        o = self.options
        n = call.data.get("n") or 1
        req = images.submit_request(o, call.model, call.data, provider=self.name, edit=call.op == "image_edits")
        state = translate.submit_state(await self.roundtrip(req), provider=self.name)
        schedule = o.model_copy(update={"poll_interval_s": o.image_poll_interval_s,
                                        "poll_max_interval_s": o.image_poll_max_interval_s})

        async def status() -> Polled:
            body = await self.roundtrip(self.own(translate.status_request(o, state)))
            return translate.read_status(body, provider=self.name, what="image")

        try:
            await poll(status, hosted_images.no_progress, schedule, self.name)
        except (asyncio.CancelledError, UpstreamTimeout):    # the deadline: the request is not wanted now
            hosted_images.cancel_later(self, state)
            raise
        resp = await self.upstream.send(self.own(translate.response_request(o, state)))
        body = await (self.upstream.read_error(resp) if resp.status >= 300 else self.upstream.read(resp))
        urls = images.read_result(resp.status, body, resp.headers, n, provider=self.name, secret=o.api_key)
        return Reply(body=await hosted_images.images_at(self, urls, o, "request"))
