"""The results of a batch's request lines (`/v1/batches`), while it runs: one
result per line of its input file (index 0..n-1), already formatted as the
output file's JSON line, and the batch's tally.

Several replicas run one batch's lines, and a line whose replica died may be
run again by another: the first result stored for (batch, index) is the one
kept, later puts of that index change nothing, and the tally counts each line
once because it is added to in the same atomic step as the line is stored.
The stop asked of a batch (cancel or expire) is kept with its tally: the first
ask wins, so every replica sees one reason and one time.

What is here goes (`drop`) once the batch's output files are written; the
batch's own record is kept elsewhere.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

STOPS = ("cancel", "expire")      # the reasons a batch is asked to stop


@dataclass(slots=True)
class Tally:
    done: int = 0            # lines with a stored result
    failed: int = 0          # of those, stored with ok=False
    cost_nano: int = 0       # sum over stored results
    input_tokens: int = 0
    output_tokens: int = 0
    stop: str | None = None      # "cancel" | "expire" once asked (the first asked wins)
    stop_at: int | None = None   # unix seconds of that ask


class BatchLines(ABC):
    @abstractmethod
    async def put(self, batch_id: str, index: int, ok: bool, line: bytes, cost_nano: int = 0,
                  input_tokens: int = 0, output_tokens: int = 0) -> bool:
        """Store line `index`'s result unless one is stored already, and add it to the tally in the same
        atomic step; whether this call stored it."""

    @abstractmethod
    async def stored(self, batch_id: str, first: int, count: int) -> list[tuple[bool, bytes] | None]:
        """Results of lines first..first+count-1 in order: (ok, line), or None where none is stored yet.
        (Asked for at most 1,000 at a time: one bounded read.)"""

    @abstractmethod
    async def tally(self, batch_id: str) -> Tally:
        """The batch's tally; all zeros (and no stop) for a batch with nothing stored."""

    @abstractmethod
    async def stop(self, batch_id: str, reason: str, at: int) -> tuple[str, int]:
        """Ask the batch to stop (reason "cancel" or "expire"); the first ask is kept. The reason and time in
        effect."""

    @abstractmethod
    async def drop(self, batch_id: str) -> None:
        """Forget the batch's results and tally (once its output files are written)."""


def check_stop(reason: str) -> None:
    if reason not in STOPS:
        raise ValueError(f"a batch stops to 'cancel' or 'expire', not {reason!r}")
