"""`type: replicate`: video models on Replicate (Kling, Veo, Hailuo, Wan, LTX, ...).
Wire format and what is sent per model in translate.py."""
from __future__ import annotations

from providers.hosted_video import HostedVideoProvider
from providers.replicate import translate


class ReplicateProvider(HostedVideoProvider):
    Options = translate.Options
    translate = translate
