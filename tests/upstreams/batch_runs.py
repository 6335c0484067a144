"""What the fakes' batch APIs share (OpenAI's Batch API, Anthropic's Message Batches, Gemini's
batch mode): a batch that runs for real, its requests answered as the fake's own chat endpoint
answers them, once it ends; and the knobs that say how it ends.

A batch is running for `polls` status looks (and at least `delay_s`), then ends as `end` says:
"completed" runs every request; "expired" and "cancelled" (or a cancel asked for meanwhile) run
only the first `run` of them, the rest never run; "failed" runs none. `errors` makes chosen
custom ids fail with an HTTP status (each fake writes the error in its provider's own shape)."""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BatchKnobs:
    polls: int = 1                          # status looks that still see the batch running
    delay_s: float = 0.0                    # and it runs at least this long
    end: str = "completed"                  # "completed" | "expired" | "cancelled" | "failed"
    run: int = 0                            # an expired or cancelled batch: how many requests ran first
    errors: dict[str, int] = field(default_factory=dict)   # custom id -> the HTTP status it fails with
    report_unrun: bool = True               # results name the requests never run (OpenAI, Anthropic)
    answer: bytes | None = None             # set: every batch endpoint answers 200 with this body (hostile)
    results_base: str | None = None         # Anthropic: results_url on this origin instead of the fake's own
    keys: bool = True                       # Gemini: each inlined response carries its request's metadata.key
    output_at: str = "both"                 # Gemini: the responses in "metadata" (.output), "response", or "both"


@dataclass
class FakeBatch:
    id: str
    requests: list[tuple[str, Any]]         # (custom id, the request as the fake parsed it)
    model: str = ""
    created: float = field(default_factory=time.time)
    looks: int = 0
    cancel_asked: float | None = None
    ended: str | None = None                # how it ended: "completed" | "expired" | "cancelled" | "failed"
    ended_at: float | None = None
    # custom id -> (HTTP status, the answer's JSON body) for the requests that ran, in order
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)    # what one provider's fake keeps beside

    @property
    def not_run(self) -> list[str]:
        return [cid for cid, _ in self.requests if cid not in self.answers]


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def look(batch: FakeBatch, knobs: BatchKnobs, answer: Callable[[str, Any], tuple[int, Any]]) -> None:
    """One status look at `batch`: it ends once its looks are spent (or at once when cancelled),
    running its requests with `answer(custom id, request)` -> (status, JSON body)."""
    if batch.ended is not None:
        return
    batch.looks += 1
    due = batch.looks > knobs.polls and time.time() - batch.created >= knobs.delay_s
    if batch.cancel_asked is None and not due:
        return
    how = "cancelled" if batch.cancel_asked is not None else knobs.end
    count = len(batch.requests) if how == "completed" else 0 if how == "failed" else knobs.run
    for custom_id, request in batch.requests[:count]:
        status = knobs.errors.get(custom_id)
        batch.answers[custom_id] = (status, None) if status is not None else answer(custom_id, request)
    batch.ended, batch.ended_at = how, time.time()
