"""Stored responses of the Responses API: what `store: true` keeps, so a later
request can name it (`previous_response_id`) or read and delete it.

The store keeps each as an opaque JSON document with the few fields it is
looked up or checked by; what is in the document is the Responses API's
business. A record lives `ttl_s` after its last put, then is gone for good.
On Redis, a Redis that loses its data loses them too: nothing reseeds them
(unlike config versions), and a request naming a lost one is answered as if
it had expired.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(slots=True)
class ResponseRecord:
    """A stored response as the store keeps it."""
    id: str              # "resp_..."
    owner: str           # the id of the key that created it (the caller checks it; the store does not)
    created_at: int      # unix seconds
    data: bytes          # the response, JSON (up to a few MB)


class Responses(ABC):
    @abstractmethod
    async def put(self, record: ResponseRecord, ttl_s: float) -> None:
        """Store `record` under its id, replacing any record already there, for `ttl_s` seconds."""

    @abstractmethod
    async def get(self, response_id: str) -> ResponseRecord | None:
        """The record stored under `response_id`; None when it was never stored, was
        deleted or expired."""

    @abstractmethod
    async def delete(self, response_id: str) -> bool:
        """Remove a record; whether there was one (an expired one counts as none)."""
