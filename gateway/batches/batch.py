"""A batch: what was asked, where it stands, and what it shows clients as
OpenAI's Batch object. Stored as JSON in a job record of the state store
(`JobRecord.data`), listed per owner under `batches:<key id>`.

Its requests are run in parts of `part_lines` lines: `parts` holds each part's
byte offset in the input file, so a process that takes a part reads only its
lines. While it runs, what is done is counted in `store.batches` (a `Tally`);
once it ends the counts are copied here and the tally is dropped.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.spend import usd
from gateway.store import JobRecord, Tally

FINISHED = frozenset({"completed", "failed", "expired", "cancelled"})
COORDINATORS = "@batches"        # the queue of batches, each taken by one process that sees it through
PARTS = "@batch-parts"           # the queue of parts of batches, taken by any process


def new_id() -> str:
    """`batch_` + milliseconds since the epoch (12 hex digits) + 64 random bits: ids sort by creation."""
    return f"batch_{time.time_ns() // 1_000_000:012x}{os.urandom(8).hex()}"


def is_batch_id(text: str) -> bool:
    return len(text) == 34 and text.startswith("batch_") and all(c in "0123456789abcdef" for c in text[6:])


def listed_under(owner: str) -> str:
    """The job store's list a key's batches are in (apart from its videos)."""
    return "batches:" + owner


def part_id(batch_id: str, n: int) -> str:
    return f"{batch_id}_p{n:05d}"


@dataclass(slots=True)
class Batch:
    id: str
    owner: str                        # the id of the key that made it: its requests run as that key
    endpoint: str
    input_file_id: str
    completion_window: str
    created_at: int
    expires_at: int                   # the end of the completion window
    total: int                        # requests in the input file
    model: str | None = None          # the first request's model
    metadata: dict[str, str] | None = None
    output_expires_after: int | None = None      # seconds: the output and error files' lifetime
    key_name: str = ""                # for display only
    status: str = "validating"
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    errors: list[dict[str, Any]] | None = None   # why it failed validation, as OpenAI's BatchError
    parts: list[int] = field(default_factory=list)   # each part's first byte in the input file
    output_file_id: str | None = None
    error_file_id: str | None = None
    final: dict[str, Any] | None = None           # the tally once finished (the store's is dropped)
    native: dict[str, str] | None = None          # {provider, model}: its parts go to that provider's batch API

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def record(self) -> JobRecord:
        # Kept as long as its output files are, by default (the job store forgets records then).
        return JobRecord(self.id, listed_under(self.owner), self.status, orjson.dumps(dataclasses.asdict(self)),
                         self.expires_at)

    @classmethod
    def of(cls, record: JobRecord) -> Batch:
        return cls(**orjson.loads(record.data))

    def tally(self, live: Tally | None) -> Tally:
        """What is done: the final counts once finished, else the store's live tally."""
        if self.final is not None:
            return Tally(**self.final)
        return live or Tally()

    def shown(self, live: Tally | None = None) -> dict[str, Any]:
        """OpenAI's Batch object; `cost_usd` (what its requests cost so far) is the gateway's own."""
        t = self.tally(live)
        status, cancelling_at = self.status, self.cancelling_at
        if not self.finished and t.stop == "cancel":
            status, cancelling_at = "cancelling", t.stop_at     # asked; the process running it is stopping
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint, "model": self.model,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": status, "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": self.created_at, "in_progress_at": self.in_progress_at, "expires_at": self.expires_at,
            "finalizing_at": self.finalizing_at, "completed_at": self.completed_at, "failed_at": self.failed_at,
            "expired_at": self.expired_at, "cancelling_at": cancelling_at, "cancelled_at": self.cancelled_at,
            "request_counts": {"total": self.total, "completed": t.done - t.failed, "failed": t.failed},
            "usage": {"input_tokens": t.input_tokens, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": t.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": t.input_tokens + t.output_tokens},
            "metadata": self.metadata,
            "cost_usd": usd(t.cost_nano) if t.cost_nano else "0",
        }


@dataclass(slots=True)
class Part:
    """Lines [first, first + count) of a batch, starting at byte `offset` of its input file."""
    batch_id: str
    n: int
    first: int
    count: int
    offset: int
    native_state: dict[str, Any] | None = None    # the provider's batch, once submitted (native.py)

    def record(self, expires_at: int) -> JobRecord:
        return JobRecord(part_id(self.batch_id, self.n), "batch-parts:" + self.batch_id, "queued",
                         orjson.dumps(dataclasses.asdict(self)), expires_at)

    @classmethod
    def of(cls, record: JobRecord) -> Part:
        return cls(**orjson.loads(record.data))
