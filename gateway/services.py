"""What a gateway process keeps while config versions come and go: the
state store, what each target has learned (latency, circuit), and the
long-lived parts started with the process (live config edits, the video
service, files). A config version (`Runtime`) holds a reference to these and never
changes them."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gateway.breaker import Breaker
from gateway.request_log import RequestLog
from gateway.routes import TargetStats
from gateway.store import Store
from providers.options import BreakerConfig

# Annotations only: LiveConfig, Videos and Files are built on a Runtime, which holds these services;
# Tracing speaks OpenTelemetry, loaded only when tracing is on.
if TYPE_CHECKING:
    from gateway.batches.service import Batches
    from gateway.files.service import Files
    from gateway.live_config import LiveConfig
    from gateway.telemetry.spans import Tracing
    from gateway.video.service import Videos


# Direct-name targets (`provider/model` sent by a client, no route configured) kept;
# clients choose these names, so the least recently used are forgotten past it.
MAX_DIRECT_TARGETS = 1000


class TargetBook:
    """Per-target state that outlives a config version: every configured
    target's, and the last `MAX_DIRECT_TARGETS` direct-name targets used."""

    def __init__(self) -> None:
        self._stats: dict[str, TargetStats] = {}
        self._direct: dict[str, TargetStats] = {}     # in order of last use (dicts keep insertion order)
        self.max_direct = MAX_DIRECT_TARGETS

    def get(self, target_id: str, breaker: BreakerConfig) -> TargetStats:
        stats = self._stats.get(target_id)
        if stats is None:
            stats = self._direct.pop(target_id, None)   # a direct name now configured keeps what it learned
            if stats is None:
                stats = TargetStats(Breaker(breaker.failures, breaker.cooldown_s))
            self._stats[target_id] = stats
        else:   # a config edit may have changed the thresholds
            stats.breaker.threshold, stats.breaker.cooldown_s = breaker.failures, breaker.cooldown_s
        return stats

    def direct(self, target_id: str, breaker: BreakerConfig) -> TargetStats:
        """A direct-name target's state: a configured target's if it is one, else
        from the bounded, least-recently-used part of the book."""
        stats = self._stats.get(target_id)
        if stats is not None:
            return stats
        book = self._direct
        stats = book.pop(target_id, None)
        if stats is None:
            stats = TargetStats(Breaker(breaker.failures, breaker.cooldown_s))
            if len(book) >= self.max_direct:
                del book[next(iter(book))]      # the least recently used; a request using it keeps its own reference
        else:
            stats.breaker.threshold, stats.breaker.cooldown_s = breaker.failures, breaker.cooldown_s
        book[target_id] = stats                 # (re)inserted last: the most recently used
        return stats

    def items(self) -> Iterable[tuple[str, TargetStats]]:
        return [*self._stats.items(), *self._direct.items()]


class Services:
    __slots__ = ("store", "book", "live", "videos", "files", "batches", "tracing", "request_log")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.book = TargetBook()
        self.live: LiveConfig | None = None     # started with the app (gateway/app.py)
        self.videos: Videos | None = None
        self.files: Files | None = None         # started with the app, on the videos' asset store
        self.batches: Batches | None = None     # started with the app, on files and videos
        self.tracing: Tracing | None = None     # started with the app, when telemetry.otlp_endpoint is set
        self.request_log = RequestLog()         # written to the store from the app's start (gateway/app.py)
