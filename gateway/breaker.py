"""Per-target circuit breaker: after `failures` consecutive failures the target
is skipped for `cooldown_s`, then one probe decides whether it is back."""
from __future__ import annotations


class Breaker:
    __slots__ = ("threshold", "cooldown_s", "failures", "opened_at", "probing")

    def __init__(self, threshold: int = 5, cooldown_s: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False

    def state(self, now: float) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.cooldown_s or self.probing else "half_open"

    def allow(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if now - self.opened_at < self.cooldown_s or self.probing:
            return False
        self.probing = True     # half-open: this caller is the one probe
        return True

    def retry_in(self, now: float) -> float:
        return 0.0 if self.opened_at is None else max(0.0, self.opened_at + self.cooldown_s - now)

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at = now
        self.probing = False

    def abandon(self) -> None:
        """A probe that ended without a verdict (client went away): let another try."""
        self.probing = False
