"""A video longer than its backend makes, made in segments (providers/video_fit.py plans them): the
first segment, then extensions of it, each by the next planned length, the same prompt. A backend's
extension is the whole video so far, so the last one is the video: nothing is joined here.

The job's `state` says how far it got: the upstream state of the segment in flight, as the provider
returned it (what a cancel stops), and under `segments` those of the segments finished before it. A
run that is taken over (a gateway restarted, a replica after a lapsed lease) resumes at the segment
in flight and never submits a finished one again."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from providers.base import Progress, Provider, VideoFiles, VideoSpec
from providers.errors import RateLimited, UpstreamFault, UpstreamTimeout

log = logging.getLogger("gateway.video")

FINISHED = "segments"       # the key in a job's state that holds the finished segments' states
_SUBMIT_TRIES = 4           # an extension refused for a moment (429, 5xx) is asked again, after 1, 2, 4 s
_MOST_WAIT_S = 30.0

Save = Callable[[dict[str, Any]], Awaitable[None]]


def upstream(state: dict[str, Any]) -> dict[str, Any]:
    """The segment in flight's own state, as its provider returned it."""
    return {k: v for k, v in state.items() if k != FINISHED}


async def made_in_segments(provider: Provider, spec: VideoSpec, state: dict[str, Any], progress: Progress,
                           save: Save) -> VideoFiles:
    """The whole video of a segmented job (`spec.segmented`), from where `state` says it stands.
    `save(state)` stores the job's new state before its segment is waited on."""
    assert spec.fit is not None
    lengths = spec.fit.segments
    finished: list[dict[str, Any]] = list(state.get(FINISHED, []))
    current = upstream(state)
    while True:
        at = len(finished)
        part = spec.generated() if at == 0 else spec.extension(finished)
        share = _share(progress, sum(lengths[:at]), lengths[at], sum(lengths))
        if at == len(lengths) - 1:
            return await provider.video_run(part, current, share)
        await provider.video_wait(part, current, share)
        finished.append(current)
        current = await _submitted(provider, spec.extension(finished))
        log.info("video %s: segment %d of %d submitted to %s", spec.job_id, at + 2, len(lengths), provider.name)
        await save({**current, FINISHED: list(finished)})     # its own list: the next append is not stored yet


def _share(progress: Progress, before: int, length: int, total: int) -> Progress:
    """A segment's 0..100 as its part of the whole job's progress, by the seconds it adds."""
    async def report(percent: int) -> None:
        await progress((before * 100 + length * percent) // total)
    return report


async def _submitted(provider: Provider, spec: VideoSpec) -> dict[str, Any]:
    """The extension handed over; a refusal that may pass (rate limited, an upstream fault) is asked
    again a few times, as the finished segments would be lost with the job."""
    wait = 1.0
    for _ in range(_SUBMIT_TRIES - 1):
        try:
            return await provider.video_submit(spec)
        except (RateLimited, UpstreamFault, UpstreamTimeout) as e:
            pause = e.retry_after if isinstance(e, RateLimited) and e.retry_after else wait
            log.info("video %s: %s refused an extension (%s); asking again in %.1fs", spec.job_id,
                     provider.name, e.scrubbed(provider.secrets).message, pause)
            await asyncio.sleep(min(pause, _MOST_WAIT_S))
            wait *= 2
    return await provider.video_submit(spec)
