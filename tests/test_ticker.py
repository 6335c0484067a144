"""`deadline` (providers/ticker.py): asyncio.timeout's behaviour, checked by the
process's one ticker instead of a timer per block."""
from __future__ import annotations

import asyncio
import time

import pytest
import uvloop

from providers.ticker import TICK_S, deadline

LOOPS = pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop],
                                ids=["asyncio", "uvloop"])


def run(loop_factory, coro) -> None:
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(coro)


@LOOPS
def test_a_block_past_its_deadline_raises_timeout_error_soon_after(loop_factory):
    async def body() -> None:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            with deadline(0.1):
                await asyncio.sleep(5)
        took = time.perf_counter() - started
        assert 0.1 <= took < 0.1 + 2 * TICK_S + 0.2

    run(loop_factory, body())


@LOOPS
def test_a_block_done_in_time_leaves_the_task_as_it_was(loop_factory):
    async def body() -> None:
        with deadline(0.3):             # far enough from the sleep that a busy machine does not cross it
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)        # past the deadline: nothing cancels the task later
        assert asyncio.current_task().cancelling() == 0

    run(loop_factory, body())


@LOOPS
def test_a_cancellation_from_outside_stays_a_cancellation(loop_factory):
    async def body() -> None:
        async def guarded() -> None:
            with deadline(10):
                await asyncio.sleep(5)

        task = asyncio.create_task(guarded())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(loop_factory, body())


@LOOPS
def test_cancelled_from_outside_as_the_deadline_passes_it_is_still_cancelled(loop_factory):
    async def body() -> None:
        held: list[deadline] = []

        async def guarded() -> None:
            with deadline(10) as d:
                held.append(d)
                await asyncio.sleep(5)

        task = asyncio.create_task(guarded())
        await asyncio.sleep(0.01)
        assert not held[0].check(time.perf_counter() + 11)     # as the ticker would, past the deadline...
        task.cancel()                                           # ...and a cancellation in the same turn
        with pytest.raises(asyncio.CancelledError):
            await task

    run(loop_factory, body())


@LOOPS
def test_an_inner_deadline_ends_its_block_only(loop_factory):
    async def body() -> None:
        with deadline(5):
            with pytest.raises(TimeoutError):
                with deadline(0.05):
                    await asyncio.sleep(5)
            await asyncio.sleep(0.01)      # the outer block goes on
        assert asyncio.current_task().cancelling() == 0

    run(loop_factory, body())


@LOOPS
def test_many_blocks_at_once_each_end_at_their_own_deadline(loop_factory):
    async def body() -> None:
        async def one(seconds: float) -> float:
            started = time.perf_counter()
            try:
                with deadline(seconds):
                    await asyncio.sleep(5)
            except TimeoutError:
                return time.perf_counter() - started
            return -1.0

        took = await asyncio.gather(*(one(0.05 * (i + 1)) for i in range(6)))
        for i, t in enumerate(took):
            assert 0.05 * (i + 1) <= t < 0.05 * (i + 1) + 2 * TICK_S + 0.2

    run(loop_factory, body())
