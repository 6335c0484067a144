"""The request log's stats: counters per (bucket, model, provider), added to as
each batch of records is written, so a chart over a day or a month reads a few
hundred small rows instead of a million records.

A bucket is a minute, 15 minutes or a UTC day (WIDTHS): the Overview's last
hour, day and 30 days. Its counters are plain integers (requests, errors,
tokens, nano-USD) plus two latency histograms with fixed, geometric bins
(`lat:<bin>`, `ovh:<bin>`), which add up across buckets, processes and
replicas; p50 and p99 are read from the summed histogram, within one bin's
width (10%) of the exact figure.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.spend import NANO

MINUTE, QUARTER, DAY = 60, 900, 86_400
WIDTHS = (MINUTE, QUARTER, DAY)      # the narrowest first; each a whole number of the first (rollup)
MINUTES_KEPT_S = DAY      # minute buckets serve the last hour; kept a day. The others: keep_days.
MOST_BUCKETS = 1500       # per stats query

_FIRST_MS = 0.01          # the first bin holds everything up to 10 µs
_RATIO = 1.1              # each bin 10% wider than the last
_LAST_BIN = math.ceil(math.log(3_600_000 / _FIRST_MS) / math.log(_RATIO))     # an hour and more
_LOG_RATIO = math.log(_RATIO)

COUNTERS = ("requests", "errors", "server_errors", "cache_hits", "tokens_in", "tokens_out", "cost_nano")

Group = tuple[int, int, str, str]      # (width, bucket start ms, model, provider)


class Counted(Protocol):
    """What the stats read of a record (gateway/store/requests.py RequestRecord)."""
    at_ms: int
    model: str
    provider: str
    status: int
    latency_ms: float
    overhead_ms: float | None
    tokens_in: int
    tokens_out: int
    cost_nano: int
    cache_hit: bool


@dataclass(slots=True)
class Rollup:
    """One stats row: a bucket's counters for one (model, provider)."""
    width: int          # seconds
    start_ms: int
    model: str
    provider: str
    counts: dict[str, int] = field(default_factory=dict)


def bin_of(ms: float) -> int:
    if ms <= _FIRST_MS:
        return 0
    return min(_LAST_BIN, math.ceil(math.log(ms / _FIRST_MS) / _LOG_RATIO))


def _bin_top(i: int) -> float:
    return _FIRST_MS * _RATIO ** i


def kept_ms(width: int, keep_days: int) -> int:
    """How long buckets of `width` are kept."""
    return (MINUTES_KEPT_S if width == MINUTE else keep_days * DAY) * 1000


def rollup(records: Iterable[Counted]) -> dict[Group, dict[str, int]]:
    """What a batch of records adds to each bucket of each width (a counter only where it is not 0).
    Each record is counted into its minute; then each minute's counts are added into its quarter
    and its day (both whole numbers of minutes): a record costs one bucket's additions, not three,
    and a batch spans a minute or two."""
    minutes: dict[tuple[int, str, str], dict[str, int]] = {}
    span = MINUTE * 1000
    for r in records:
        at = r.at_ms
        key = (at - at % span, r.model, r.provider)
        counts = minutes.get(key)
        if counts is None:
            counts = minutes[key] = {}
        get = counts.get
        counts["requests"] = get("requests", 0) + 1
        if r.status >= 400:
            counts["errors"] = get("errors", 0) + 1
            if r.status >= 500:
                counts["server_errors"] = get("server_errors", 0) + 1
        if r.cache_hit:
            counts["cache_hits"] = get("cache_hits", 0) + 1
        if r.tokens_in:
            counts["tokens_in"] = get("tokens_in", 0) + r.tokens_in
        if r.tokens_out:
            counts["tokens_out"] = get("tokens_out", 0) + r.tokens_out
        if r.cost_nano:
            counts["cost_nano"] = get("cost_nano", 0) + r.cost_nano
        name = f"lat:{bin_of(r.latency_ms)}"
        counts[name] = get(name, 0) + 1
        if r.overhead_ms is not None:
            name = f"ovh:{bin_of(r.overhead_ms)}"
            counts[name] = get(name, 0) + 1
    out: dict[Group, dict[str, int]] = {}
    for (start, model, provider), counts in minutes.items():
        out[(MINUTE, start, model, provider)] = counts
        for width in WIDTHS[1:]:
            wide = width * 1000
            add_into(out.setdefault((width, start - start % wide, model, provider), {}), counts)
    return out


def add_into(into: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    for name, n in counts.items():
        into[name] = into.get(name, 0) + n
    return into


def percentile(counts: dict[str, int], prefix: str, q: float) -> float | None:
    """The q-quantile (0..1) of a histogram's bins (`prefix` "lat:" or "ovh:"), interpolated in its bin."""
    bins = sorted((int(name[4:]), n) for name, n in counts.items() if name.startswith(prefix) and n > 0)
    total = sum(n for _, n in bins)
    if not total:
        return None
    rank, seen = q * total, 0
    for i, n in bins:
        if seen + n >= rank:
            low = 0.0 if i == 0 else _bin_top(i - 1)
            return round(low + (_bin_top(i) - low) * (rank - seen) / n, 3)
        seen += n
    return round(_bin_top(bins[-1][0]), 3)


def figures(counts: dict[str, int], seconds: float) -> dict[str, Any]:
    """A bucket's (or a group's) counters as the admin API shows them."""
    requests = counts.get("requests", 0)
    out: dict[str, Any] = {name: counts.get(name, 0) for name in COUNTERS}
    out["cost_usd"] = out["cost_nano"] / NANO
    out["requests_per_s"] = round(requests / seconds, 4) if seconds > 0 else 0.0
    out["error_rate"] = round(out["errors"] / requests, 4) if requests else 0.0
    out["latency_ms"] = {"p50": percentile(counts, "lat:", 0.5), "p99": percentile(counts, "lat:", 0.99)}
    out["overhead_ms"] = {"p50": percentile(counts, "ovh:", 0.5), "p99": percentile(counts, "ovh:", 0.99)}
    return out


@dataclass(slots=True)
class Stats:
    width: int
    since_ms: int
    until_ms: int
    buckets: list[dict[str, Any]]       # one per bucket, oldest first, empty ones included
    groups: list[dict[str, Any]]        # one per (model, provider) over the whole span, busiest first
    totals: dict[str, Any]


def summarise(rows: Iterable[Rollup], since_ms: int, until_ms: int, width: int, now_ms: int | None = None) -> Stats:
    """Series and totals over [since_ms, until_ms) (since_ms on a bucket's start); rates count the
    seconds up to `now_ms` in a bucket still under way."""
    span = width * 1000
    end = until_ms if now_ms is None else max(since_ms + 1, min(until_ms, now_ms))
    starts = range(since_ms, until_ms, span)
    per_bucket: dict[int, dict[str, int]] = {s: {} for s in starts}
    per_group: dict[tuple[str, str], dict[str, int]] = {}
    total: dict[str, int] = {}
    for r in rows:
        if r.start_ms in per_bucket:
            add_into(per_bucket[r.start_ms], r.counts)
            add_into(per_group.setdefault((r.model, r.provider), {}), r.counts)
            add_into(total, r.counts)
    seconds = (end - since_ms) / 1000
    buckets = [{"start_ms": s, **figures(per_bucket[s], max(0, min(span, end - s)) / 1000)} for s in starts]
    groups = [{"model": m, "provider": p, **figures(c, seconds)}
              for (m, p), c in sorted(per_group.items(), key=lambda kv: (-kv[1].get("requests", 0), kv[0]))]
    return Stats(width, since_ms, until_ms, buckets, groups, figures(total, seconds))
