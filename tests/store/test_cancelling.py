"""A loop of store calls stops when it is cancelled, whatever moment the cancellation
lands (a queue's taker, a worker's heartbeat and the request log are such loops, and a
shutdown waits for them). redis-py writes each command through asyncio.wait_for, which
on Python 3.11 drops a cancellation that lands as the write completes: the store keeps it."""
from __future__ import annotations

import asyncio
import random


async def test_a_loop_of_store_calls_stops_when_cancelled_at_any_moment(open_store):
    async with open_store() as store:
        async def taking() -> None:
            while True:
                await store.jobs.claim("cancelled", "consumer", 5)
                await store.jobs.queue_depth("cancelled")

        rng = random.Random(16)
        for _ in range(150):
            task = asyncio.create_task(taking())
            await asyncio.sleep(rng.random() * 0.004)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2)
            assert done, f"a cancelled loop of store calls ran on: {task}"
            assert task.cancelled()
