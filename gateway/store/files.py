"""Files' records (`/v1/files`): who owns each, what it is for, its name, size
and expiry, and for batch input what a batch reads without opening the file
(its count of requests and the endpoint they name). The bytes are not here:
they are in the asset store (gateway/files/service.py).

A record is written once and never changed; it goes when its file is deleted
or, past `expires_at`, when the expiry sweep comes by. Until then an expired
record is still stored but never listed (`page` is given the time), and the
caller of `get` checks it, so the time can be moved in tests.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(slots=True)
class FileRecord:
    id: str              # "file-" + creation time in ms (12 hex digits) + 64 random bits
    owner: str           # the id of the key that made it (the caller checks it; the store does not)
    purpose: str         # batch, batch_output, user_data, ...
    filename: str
    size: int            # bytes
    created_at: int      # unix seconds, the id's own time: ids sort as (created_at, id) do
    expires_at: int | None = None     # unix seconds; None: kept until deleted
    lines: int = 0       # batch input: its requests (non-empty lines); 0 otherwise
    endpoint: str = ""   # batch input: the url every request names; "" otherwise

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class FileRecords(ABC):
    @abstractmethod
    async def create(self, record: FileRecord) -> None:
        """Store a new record (its id is new: ids are never reused)."""

    @abstractmethod
    async def get(self, file_id: str) -> FileRecord | None:
        """The record, expired or not; None when there is none."""

    @abstractmethod
    async def page(self, owner: str, purpose: str | None, after: str | None, limit: int, order: str,
                   now: float) -> tuple[list[FileRecord], bool]:
        """An owner's records not expired at `now`, of `purpose` only where given, by id
        ("asc" or "desc": by created_at, then id), those past `after` only, at most `limit`;
        and whether more follow."""

    @abstractmethod
    async def delete(self, file_id: str) -> bool:
        """Remove a record and its place in every list; whether there was one."""

    @abstractmethod
    async def expired(self, now: float, limit: int) -> list[str]:
        """Up to `limit` ids of records whose `expires_at` has passed, oldest expiry first.
        They stay until deleted (the sweep deletes each file's bytes, then its record), so
        a sweep cut short by a crash is finished by the next."""
