"""Which workers are alive: each says so every few seconds for the queue it
serves, and is forgotten once it stops."""
from __future__ import annotations

from abc import ABC, abstractmethod


class Workers(ABC):
    @abstractmethod
    async def beat(self, queue: str, worker: str, info: dict, ttl_s: float) -> None:
        """A worker serving `queue` is alive for `ttl_s` more seconds; `info` says what it runs."""

    @abstractmethod
    async def live(self, queue: str) -> list[dict]:
        """The live workers of a queue: their last `info`, plus `id` and `until` (unix seconds)."""
