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


def live(buckets: dict[int, int], current: int) -> dict[int, int]:
    """The buckets still inside the window (drops the rest from `buckets`)."""
    oldest = current - BUCKETS + 1
    for b in [b for b in buckets if b < oldest]:
        del buckets[b]
    return buckets


def retry_after(buckets: dict[int, int], current: int, window_s: int, now: float, need: int, limit: int) -> float:
    """Seconds until `need` more units fit under `limit`, as old buckets leave."""
    used = sum(buckets.values())
    if need > limit:
        return float(window_s)          # never fits; the client learns to stop
    for b in sorted(buckets):
        used -= buckets[b]
        if used + need <= limit:
            return max(0.0, (b + BUCKETS) * bucket_s(window_s) - now)
    return 0.0


def reset_after(buckets: dict[int, int], window_s: int, now: float) -> float:
    """Seconds until the oldest counted unit leaves the window (0 when empty)."""
    held = [b for b, v in buckets.items() if v > 0]
    if not held:
        return 0.0
    return max(0.0, (min(held) + BUCKETS) * bucket_s(window_s) - now)
