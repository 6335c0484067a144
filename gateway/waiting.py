"""Waiting for an event with a time limit, in loops that are stopped by cancellation."""
from __future__ import annotations

import asyncio


async def set_or_after(event: asyncio.Event, most_s: float) -> None:
    """Until `event` is set, `most_s` at most. Not asyncio.wait_for: on Python 3.11 it loses a
    cancellation that comes as its time runs out, and a loop being stopped then runs on (and
    whoever awaits its end at shutdown waits for ever)."""
    try:
        async with asyncio.timeout(most_s):
            await event.wait()
    except TimeoutError:
        pass
