"""Sliding windows counted in buckets, as pure functions both stores use.

A window of W seconds is 60 buckets of W/60 seconds; what counts is the sum of
the buckets whose index is within the last 60 (the current one included).
Error bound: the oldest bucket is dropped whole, so a unit can stop counting
up to W/60 seconds early; at most one bucket's worth (1/60 of the window) more
than `limit` can pass in a strict W-second span. Within that bound it is exact:
the check and the charge are one atomic step.
"""
from __future__ import annotations

import math

BUCKETS = 60


def bucket_s(window_s: int) -> float:
    return window_s / BUCKETS


def bucket_of(now: float, window_s: int) -> int:
    # floor(a / b), not a // b: the Redis store's Lua computes it this way, and
    # both must name the same bucket for the same instant.
    return math.floor(now / bucket_s(window_s))


class Buckets:
    """One window's counts by bucket, oldest first, with their running total:
    the check is O(1) and leaving buckets are dropped from the front."""
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}     # insertion order is time order: buckets only grow
        self.total = 0

    def advance(self, current: int) -> None:
        """Drop the buckets that left the window."""
        oldest = current - BUCKETS + 1
        counts = self.counts
        while counts:
            first = next(iter(counts))
            if first >= oldest:
                break
            self.total -= counts.pop(first)

    def add(self, bucket: int, amount: int) -> None:
        self.counts[bucket] = self.counts.get(bucket, 0) + amount
        self.total += amount

    def correct(self, bucket: int, delta: int) -> None:
        """Adjust a bucket still in the window (never below 0)."""
        old = self.counts.get(bucket)
        if old is not None:
            new = max(0, old + delta)
            self.counts[bucket] = new
            self.total += new - old

    def retry_after(self, window_s: int, now: float, need: int, limit: int) -> float:
        """Seconds until `need` more units fit under `limit`, as old buckets leave."""
        if need > limit:
            return float(window_s)          # never fits; the client learns to stop
        used = self.total
        for b, v in self.counts.items():
            used -= v
            if used + need <= limit:
                return max(0.0, (b + BUCKETS) * bucket_s(window_s) - now)
        return 0.0

    def reset_after(self, window_s: int, now: float) -> float:
        """Seconds until the oldest counted unit leaves the window (0 when empty)."""
        for b, v in self.counts.items():
            if v > 0:
                return max(0.0, (b + BUCKETS) * bucket_s(window_s) - now)
        return 0.0
