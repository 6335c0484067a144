"""The spend ledger: what each (day, key, model, provider) used and cost.

Rows are written by `Limits.settle`, in the same step that turns a request's
hold into spend, so the ledger and the budgets never disagree; this part reads
them back for reports.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

LEDGER_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nano", "cache_hits")


@dataclass(slots=True)
class LedgerEntry:
    """Spend added to one (day, key, model, provider) row."""
    day: str
    key: str
    model: str
    provider: str
    requests: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_nano: int = 0
    cache_hits: int = 0

    @property
    def group(self) -> tuple[str, str, str, str]:
        """The row it adds to: (day, key, model, provider)."""
        return self.day, self.key, self.model, self.provider

    def counts(self) -> tuple[int, int, int, int, int, int]:
        """Its counts, in LEDGER_FIELDS order."""
        return (self.requests, self.prompt_tokens, self.completion_tokens, self.cached_tokens, self.cost_nano,
                self.cache_hits)

    def copy(self) -> LedgerEntry:
        return LedgerEntry(self.day, self.key, self.model, self.provider, *self.counts())

    def add(self, e: LedgerEntry) -> None:
        """Add `e`'s counts to this row's (once a request, spelled out: a loop over the
        fields with getattr and setattr cost several times as much)."""
        self.requests += e.requests
        self.prompt_tokens += e.prompt_tokens
        self.completion_tokens += e.completion_tokens
        self.cached_tokens += e.cached_tokens
        self.cost_nano += e.cost_nano
        self.cache_hits += e.cache_hits


class Ledger(ABC):
    @abstractmethod
    async def rows(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        """Ledger rows for days in [day_from, day_to] (YYYY-MM-DD)."""
