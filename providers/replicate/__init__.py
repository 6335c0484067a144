"""`type: replicate`: video models on Replicate (Kling, Veo, Hailuo, Wan, LTX, ...).
Wire format and what is sent per model in translate.py."""
from __future__ import annotations

from types import ModuleType
from typing import ClassVar

from providers.hosted_video import HostedVideoProvider
from providers.replicate import translate


class ReplicateProvider(HostedVideoProvider[translate.Options]):
    Options = translate.Options
    translate: ClassVar[ModuleType] = translate   # annotated: a bare module assignment is an alias to mypy
