"""`type: replicate`: video models on Replicate (Kling, Veo, Hailuo, Wan, LTX, ...), and
image models (FLUX, Imagen, nano-banana, ...). Wire format and what is sent per model in
translate.py (video) and images.py."""
from __future__ import annotations

import asyncio
from types import ModuleType
from typing import ClassVar

from providers import hosted_images
from providers.base import Call, Reply
from providers.errors import UpstreamFault, UpstreamTimeout
from providers.hosted_video import HostedVideoProvider, Polled, poll
from providers.http import json_object
from providers.replicate import images, translate


class ReplicateProvider(HostedVideoProvider[translate.Options]):
    Options = translate.Options
    translate: ClassVar[ModuleType] = translate   # annotated: a bare module assignment is an alias to mypy
    operations = frozenset({"video", "images"})

    async def images(self, call: Call) -> Reply:
        """A prediction made with `Prefer: wait`, polled if it has not finished by the time
        Replicate answers; its images fetched and answered as OpenAI's `b64_json`. A prediction
        cut short (the deadline, the client gone) is cancelled."""
        o = self.options
        n = call.data.get("n") or 1
        req = images.submit_request(o, call.model, call.data, provider=self.name, edit=call.op == "image_edits")
        doc = json_object(await self.roundtrip(req), self.name)
        state = {"id": images.prediction_id(doc, provider=self.name)}
        polled = images.read_prediction(doc, n, provider=self.name)
        if polled.status == "failed":
            raise polled.error or UpstreamFault(f"provider '{self.name}' failed the image", provider=self.name)
        if polled.status != "completed":
            schedule = o.model_copy(update={"poll_interval_s": o.image_poll_interval_s,
                                            "poll_max_interval_s": o.image_poll_max_interval_s})

            async def check() -> Polled:
                body = await self.roundtrip(translate.status_request(o, state))
                return images.read_prediction(json_object(body, self.name), n, provider=self.name)

            try:
                polled = await poll(check, hosted_images.no_progress, schedule, self.name)
            except (asyncio.CancelledError, UpstreamTimeout):   # the deadline: the prediction is not wanted now
                hosted_images.cancel_later(self, state)
                raise
        urls: list[str] = polled.result or []
        return Reply(body=await hosted_images.images_at(self, urls, o, "prediction"))
