"""The workers contract (gateway/store/workers.py), run against both stores."""
from __future__ import annotations

import asyncio
import time

from tests.store.records import LEASE_S


async def test_workers_are_live_until_their_heartbeat_lapses(open_store):
    async with open_store() as store:
        assert await store.workers.live("ltx") == []
        await store.workers.beat("ltx", "gpu-1", {"device": "cuda:0"}, LEASE_S)
        await store.workers.beat("ltx", "gpu-2", {"device": "cuda:1"}, 10)
        await store.workers.beat("wan", "gpu-3", {}, 10)
        live = sorted(await store.workers.live("ltx"), key=lambda w: w["id"])
        assert [(w["id"], w["device"]) for w in live] == [("gpu-1", "cuda:0"), ("gpu-2", "cuda:1")]
        assert live[0]["until"] > time.time()
        await asyncio.sleep(LEASE_S + 0.1)
        assert [w["id"] for w in await store.workers.live("ltx")] == ["gpu-2"]
        await store.workers.beat("ltx", "gpu-1", {"device": "cuda:0"}, 10)    # back again
        assert sorted(w["id"] for w in await store.workers.live("ltx")) == ["gpu-1", "gpu-2"]
