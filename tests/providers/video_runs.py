"""What the hosted video provider tests share: providers made against a fake
(closed after the test), and a job run from submit (or a saved state) to its files."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from providers.base import Provider, VideoFiles, VideoSpec
from tests.harness import Loop


@contextmanager
def providers_made(loop: Loop, build: Callable[..., Provider]) -> Iterator[Callable[..., Any]]:
    made: list[Provider] = []

    def make(**kw: Any) -> Any:
        made.append(build(**kw))
        return made[-1]

    try:
        yield make
    finally:
        for p in made:
            loop.run(p.close())


def run_job(loop: Loop, provider: Provider, s: VideoSpec,
            state: dict | None = None) -> tuple[dict, VideoFiles, list[int]]:
    """(state, files, progress reported): submits first unless `state` is given."""
    reported: list[int] = []

    async def progress(p: int) -> None:
        reported.append(p)

    async def go():
        st = state if state is not None else await provider.video_submit(s)
        return st, await provider.video_run(s, st, progress)

    state, files = loop.run(go())
    return state, files, reported
