"""What a gateway process keeps while config versions come and go: the
state store, what each target has learned (latency, circuit), and the
long-lived parts started with the process (live config edits, the video
service). A config version (`Runtime`) holds a reference to these and never
changes them."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.breaker import Breaker
from gateway.routes import TargetStats
from gateway.store import Store
from providers.options import BreakerConfig

if TYPE_CHECKING:      # annotations only: both are built on a Runtime, which holds these services
    from gateway.live_config import LiveConfig
    from gateway.video.service import Videos


class TargetBook:
    """Per-target state that outlives a config version."""

    def __init__(self) -> None:
        self._stats: dict[str, TargetStats] = {}

    def get(self, target_id: str, breaker: BreakerConfig) -> TargetStats:
        stats = self._stats.get(target_id)
        if stats is None:
            stats = self._stats[target_id] = TargetStats(Breaker(breaker.failures, breaker.cooldown_s))
        else:   # a config edit may have changed the thresholds
            stats.breaker.threshold, stats.breaker.cooldown_s = breaker.failures, breaker.cooldown_s
        return stats

    def items(self) -> Iterable[tuple[str, TargetStats]]:
        return self._stats.items()


class Services:
    __slots__ = ("store", "book", "live", "videos")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.book = TargetBook()
        self.live: LiveConfig | None = None     # started with the app (gateway/app.py)
        self.videos: Videos | None = None
