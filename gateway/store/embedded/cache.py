"""The embedded store's response cache: the most recently used answers, in
this process's memory."""
from __future__ import annotations

import time
from collections import OrderedDict

from gateway.store.cache import Cache

_ENTRIES = 10_000


class EmbeddedCache(Cache):
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        expires, value = hit
        if expires <= time.time():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        self._entries[key] = (time.time() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > _ENTRIES:
            self._entries.popitem(last=False)
