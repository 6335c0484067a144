"""Versions of the running config, as every replica reads them: an edit is
stored only if no other came first, and every replica hears of it."""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

KEPT = 50   # versions kept; older ones are dropped as new ones are stored


@dataclass(slots=True)
class ConfigVersion:
    """One version of the running config, as every replica reads it."""
    version: int
    at: float                      # unix seconds
    author: str                    # who made it: "file" (the YAML seed) or the admin API's caller
    summary: str                   # what changed, in a line
    file_hash: str = ""            # sha256 of the YAML seed in effect (carried forward by edits)
    document: bytes | None = None  # the config as written, JSON; None in listings

    def config(self) -> dict[str, Any]:
        """The document, parsed: only versions read one by one carry it."""
        if self.document is None:
            raise ValueError(f"config version {self.version} was read without its document")
        return orjson.loads(self.document)


class Configs(ABC):
    @abstractmethod
    async def latest(self) -> ConfigVersion | None:
        """The newest config version, with its document; None before the first."""

    @abstractmethod
    async def version(self, version: int) -> ConfigVersion | None: ...

    @abstractmethod
    async def versions(self, limit: int) -> list[ConfigVersion]:
        """The newest versions first, without documents (the store keeps the last `KEPT`)."""

    @abstractmethod
    async def put(self, version: ConfigVersion, expected: int) -> int | None:
        """Store a new version if the newest is still `expected` (0: none yet), and
        tell every replica; its number, or None when another edit came first."""

    @abstractmethod
    async def seed(self, version: ConfigVersion) -> bool:
        """Store `version` under its own number if the store's newest is older (a store
        that lost its data, reseeded from a running version) and tell every replica;
        False when the store already holds that number or a newer one."""

    async def events(self) -> AsyncIterator[int]:
        """New version numbers as any replica stores them; a store that cannot tell
        yields nothing (replicas also look every few seconds)."""
        await asyncio.Event().wait()
        yield 0   # never reached: makes this an async generator
