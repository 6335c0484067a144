"""The response cache: answers kept for a while under a key the caller derives
(gateway/cache.py says which requests are cached and under what key)."""
from __future__ import annotations

from abc import ABC, abstractmethod


class Cache(ABC):
    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value put under `key`, or None when there is none or it expired."""

    @abstractmethod
    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...
