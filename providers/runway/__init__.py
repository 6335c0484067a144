"""`type: runway`: Runway's developer API for video (gen4.5, gen4_turbo, veo3.x).
Text-to-video, or image-to-video with `input_reference`; wire format in translate.py."""
from __future__ import annotations

from types import ModuleType
from typing import ClassVar

from providers.hosted_video import HostedVideoProvider
from providers.runway import translate


class RunwayProvider(HostedVideoProvider[translate.Options]):
    Options = translate.Options
    translate: ClassVar[ModuleType] = translate   # annotated: a bare module assignment is an alias to mypy
