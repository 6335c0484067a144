"""What every store is: its parts, opened and closed together, and the error
that says it did not answer."""
from __future__ import annotations

from abc import ABC, abstractmethod

from gateway.store.admin import Audit, Sessions
from gateway.store.batches import BatchLines
from gateway.store.cache import Cache
from gateway.store.configs import Configs
from gateway.store.files import FileRecords
from gateway.store.jobs import Jobs
from gateway.store.ledger import Ledger
from gateway.store.limits import Limits
from gateway.store.requests import Requests
from gateway.store.responses import Responses
from gateway.store.workers import Workers


class StoreDown(Exception):
    """The state store did not answer (in time): the caller applies its policy."""


class Store(ABC):
    """The state shared by every replica, one part per idea."""
    limits: Limits
    ledger: Ledger
    cache: Cache
    jobs: Jobs
    configs: Configs
    workers: Workers
    responses: Responses
    files: FileRecords
    batches: BatchLines
    requests: Requests
    sessions: Sessions
    audit: Audit

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    @abstractmethod
    async def ping(self) -> bool:
        """Whether the store answers (False rather than StoreDown: it is the question)."""

    @abstractmethod
    async def secret(self, name: str) -> bytes:
        """A random 32-byte secret shared by every replica, made on first use
        (signs `video_url` links when the config sets none)."""
