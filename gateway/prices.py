"""Prices per `provider/model` (globs allowed): exact names win over globs,
longer globs over shorter."""
from __future__ import annotations

from fnmatch import fnmatchcase

from gateway.config.schema import Price


class Prices:
    def __init__(self, table: dict[str, Price]) -> None:
        self._exact = {k: v for k, v in table.items() if not any(c in k for c in "*?[")}
        self._globs = sorted(((k, v) for k, v in table.items() if k not in self._exact),
                             key=lambda kv: -len(kv[0]))

    def get(self, provider: str, model: str) -> Price | None:
        name = f"{provider}/{model}"
        hit = self._exact.get(name)
        if hit is not None:
            return hit
        return next((v for k, v in self._globs if fnmatchcase(name, k)), None)
