"""The cache contract (gateway/store/cache.py), run against both stores."""
from __future__ import annotations

import asyncio


async def test_cache_put_get_and_expiry(open_store):
    async with open_store() as store:
        assert await store.cache.get("k") is None
        await store.cache.put("k", b"\x00answer", 0.15)
        assert await store.cache.get("k") == b"\x00answer"
        await asyncio.sleep(0.2)
        assert await store.cache.get("k") is None
