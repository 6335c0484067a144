"""`rules:`: the first rule whose key and model globs match rewrites the model
or the strategy of the request."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import translate
from re import Pattern

from gateway.config.schema import RuleConfig

_CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Decision:
    model: str
    strategy: str | None = None    # overrides the top-level strategy of the model's route


@dataclass(frozen=True, slots=True)
class _Rule:
    key: Pattern[str]
    model: Pattern[str]
    to_model: str | None
    strategy: str | None


class Rules:
    def __init__(self, configs: list[RuleConfig]) -> None:
        self._rules = [_Rule(re.compile(translate(r.match.key)), re.compile(translate(r.match.model)),
                             r.model, r.strategy) for r in configs]
        # (key, model) pairs repeat endlessly; remembering answers keeps globs off the hot path.
        self._cache: dict[tuple[str, str], Decision] = {}

    def apply(self, key: str, model: str) -> Decision:
        hit = self._cache.get((key, model))
        if hit is not None:
            return hit
        decision = Decision(model)
        for r in self._rules:
            if r.key.match(key) and r.model.match(model):
                decision = Decision(r.to_model or model, r.strategy)
                break
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[(key, model)] = decision
        return decision
