"""A model's route, compiled: a tree of targets under strategies, and what
each target has learned (latency, load, circuit) across requests and config
versions."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from gateway.breaker import Breaker
from gateway.config.schema import CacheConfig, ModelLimits, Price
from providers.base import Provider


@dataclass(slots=True)
class TargetStats:
    breaker: Breaker
    latency_s: float | None = None   # moving average of time to answer (first chunk for streams)
    in_flight: int = 0
    last_error: str | None = None    # the latest failure, for /admin/providers
    last_error_at: float | None = None
    error_rate: float = 0.0          # moving average of attempts that failed (1) or answered (0)

    def record_latency(self, seconds: float) -> None:
        """An answer: its latency, and one more attempt that did not fail."""
        self.latency_s = seconds if self.latency_s is None else 0.8 * self.latency_s + 0.2 * seconds
        self.error_rate *= 0.8

    def record_failure(self, message: str) -> None:
        self.error_rate = 0.8 * self.error_rate + 0.2
        self.last_error, self.last_error_at = message[:300], time.time()


@dataclass(slots=True)
class Target:
    provider: Provider
    model: str
    weight: float
    stats: TargetStats
    cost: float = float("inf")   # USD per 1K tokens in + 1K out; unknown prices sort last
    price: Price | None = None

    @property
    def id(self) -> str:
        return f"{self.provider.name}/{self.model}"


@dataclass(slots=True)
class Route:
    strategy: str
    targets: list[Target | Route]
    weight: float = 1.0

    def plan(self, strategy: str | None = None) -> list[Target]:
        """Every target in the order this request should try them."""
        ordered = ORDER[strategy or self.strategy](self.targets)
        out: list[Target] = []
        for node in ordered:
            out.extend(node.plan() if isinstance(node, Route) else (node,))
        return out

    def is_fixed(self) -> bool:
        """Whether every request gets the same order (fallback all the way down)."""
        return self.strategy == "fallback" and all(
            n.is_fixed() for n in self.targets if isinstance(n, Route))

    def leaves(self) -> list[Target]:
        out: list[Target] = []
        for node in self.targets:
            out.extend(node.leaves() if isinstance(node, Route) else (node,))
        return out


@dataclass(slots=True)
class ServedModel:
    """A public model name and how it is served."""
    name: str
    kind: str
    route: Route
    retries: int = 2
    timeout_s: float = 60.0
    attempt_timeout_s: float | None = None
    targets: list[Target] = field(default_factory=list)
    fixed_order: list[Target] | None = None   # computed once when the order never varies
    limits: ModelLimits | None = None
    hold_price: Price | None = None            # what a budget holds against: the dearest target
    cache: CacheConfig | None = None
    gated: bool = False                        # a target's provider has limits of its own

    def plan(self, strategy: str | None) -> list[Target]:
        if strategy is None and self.fixed_order is not None:
            return self.fixed_order
        return self.route.plan(strategy)


Node = Target | Route


def _metric(node: Node, of) -> float:
    """A nested route counts as good as its best target."""
    if isinstance(node, Route):
        return min(_metric(n, of) for n in node.targets)
    return of(node)


def _fallback(nodes: list[Node]) -> list[Node]:
    return nodes


def _weighted(nodes: list[Node]) -> list[Node]:
    # Weighted order without replacement (Efraimidis-Spirakis): the first
    # pick follows the weights, the rest are failover in weighted order too.
    return sorted(nodes, key=lambda n: random.random() ** (1.0 / n.weight), reverse=True)


def _least_latency(nodes: list[Node]) -> list[Node]:
    # Untried targets score 0, so each gets measured once before the ranking settles.
    return sorted(nodes, key=lambda n: _metric(n, lambda t: t.stats.latency_s or 0.0))


def _least_cost(nodes: list[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: _metric(n, lambda t: t.cost))


def _least_busy(nodes: list[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: _metric(n, lambda t: t.stats.in_flight))


ORDER = {"fallback": _fallback, "weighted": _weighted, "least_latency": _least_latency,
         "least_cost": _least_cost, "least_busy": _least_busy}
