"""Prices per `provider/model` (globs allowed): exact names win over globs,
longer globs over shorter. `provider` is the provider's name, else its type,
so the built-in table (`anthropic/claude-...`) prices any provider of that type."""
from __future__ import annotations

from fnmatch import fnmatchcase

from gateway.config.schema import Price


class Prices:
    def __init__(self, table: dict[str, Price]) -> None:
        self._exact = {k: v for k, v in table.items() if not any(c in k for c in "*?[")}
        self._globs = sorted(((k, v) for k, v in table.items() if k not in self._exact),
                             key=lambda kv: -len(kv[0]))

    def get(self, provider: str, model: str, type: str | None = None) -> Price | None:
        hit = self._lookup(f"{provider}/{model}")
        if hit is None and type is not None and type != provider:
            hit = self._lookup(f"{type}/{model}")
        return hit

    def _lookup(self, name: str) -> Price | None:
        hit = self._exact.get(name)
        if hit is not None:
            return hit
        return next((v for k, v in self._globs if fnmatchcase(name, k)), None)
