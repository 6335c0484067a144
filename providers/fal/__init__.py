"""`type: fal`: video models on fal.ai's queue (Kling, Veo, LTX, Wan, ...).
Wire format and what is sent per model in translate.py."""
from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from providers.fal import translate
from providers.hosted_video import HostedVideoProvider, Polled


class FalProvider(HostedVideoProvider[translate.Options]):
    Options = translate.Options
    translate: ClassVar[ModuleType] = translate   # annotated: a bare module assignment is an alias to mypy

    async def check(self, state: dict[str, Any]) -> Polled:
        """The status URL says COMPLETED; the result (the file's URL, or why it
        failed) is at the response URL."""
        polled = await super().check(state)
        if polled.status != "completed":
            return polled
        resp = await self.upstream.send(self.own(translate.response_request(self.options, state)))
        body = await (self.upstream.read_error(resp) if resp.status >= 300 else self.upstream.read(resp))
        return translate.read_result(resp.status, body, resp.headers, provider=self.name, secret=self.options.api_key)
