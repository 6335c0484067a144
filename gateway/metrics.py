"""The gateway's metrics, exposed through prometheus-client: counters and
histograms counted on the request path, gauges computed when /metrics is
scraped (gateway/api/health.py), and `generate_latest` writing the text format.

Counting stays a dict update on the event loop (label values are a tuple used
as the key; an observation is a bisect and two list increments; no lock, no
I/O): prometheus-client's own `.labels(...).inc()` costs ~8 µs for a
request's six counts, over the 5 µs budget. At scrape time `Counts.summed`
turns those counts into prometheus-client metric families, which a
`CollectorRegistry` collects and `generate_latest` writes.

Every process (`gateway serve --workers N` forks N) writes a snapshot of its
counts to `<state.data_dir>/metrics/<pid>-<start>.json` every second; the
process that answers a scrape adds up every file in that folder. Files of
processes that have exited stay, so totals never go backwards; `gateway serve`
empties the folder before it starts. One process works the same way.

Each family keeps at most `MAX_LABEL_SETS` distinct label sets (in one process,
and in the sum over processes); counts of any label set past that go to the set
whose every label reads `other`, so totals stay right while a scrape stays small.

Measured against the hand-written registry and text writer this replaced, A
and B interleaved on one shared 2-core machine:
- a request's six counts (bench/metrics_cost.py, CPU time, 3 x 5 runs each):
  0.96-1.02 µs before, 0.94-0.97 µs after (the same dict updates); through
  prometheus-client's `.labels(...).inc()/.observe()`: 7.8-8.1 µs.
- one scrape rendered: ~30 models 1.0 -> 3.1 ms, ~1,000 models 32 -> 101-106 ms
  (70% of it in `generate_latest`), hence `scrape` renders in a worker thread.
- bench/run.sh (CONNS="1 16", 10 s runs, 7 runs each): gateway CPU µs/request,
  median (range), bench-chat c=16 173 (151-240) before, 159 (151-197) after;
  mock-chat c=16 95 (79-126) before, 99 (82-118) after: no change that the
  machine's noise does not swamp.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

log = logging.getLogger("gateway.metrics")

Key = tuple[str, ...]
Snapshot = dict[str, list]
# Label sets a family keeps; past it, new ones are counted under every label `other`,
# so clients sending random `provider/<uuid>` names cannot grow a scrape without bound.
MAX_LABEL_SETS = 1000
OTHER = "other"
_SNAPSHOT_EVERY_S = 1.0
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"    # what generate_latest writes


class Counter:
    __slots__ = ("name", "help", "labels", "values", "other")

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.values: dict[Key, float] = {}
        self.other: Key = (OTHER,) * len(labels)

    def inc(self, key: Key = (), amount: float = 1.0) -> None:
        values = self.values
        have = values.get(key)
        if have is None:        # a new label set: the only time the cap is looked at
            if len(values) >= MAX_LABEL_SETS:
                key = self.other
            have = values.get(key, 0.0)
        values[key] = have + amount

    def family(self, rows: dict[Key, float]) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.help, labels=self.labels)
        for key, value in sorted(rows.items()):
            family.add_metric(key, value)
        return family


class Histogram:
    """Per label set: a count per bucket (not cumulative; the last is +Inf), then the sum."""
    __slots__ = ("name", "help", "labels", "bounds", "values", "other", "_les")

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        self.name, self.help, self.labels, self.bounds = name, help_text, labels, bounds
        self.values: dict[Key, list[float]] = {}
        self.other: Key = (OTHER,) * len(labels)
        self._les = (*map(_le, bounds), "+Inf")      # as written before prometheus-client: le="1", not "1.0"

    def observe(self, key: Key, value: float) -> None:
        row = self.values.get(key)
        if row is None:         # a new label set: the only time the cap is looked at
            if len(self.values) >= MAX_LABEL_SETS:
                key = self.other
                row = self.values.get(key)
            if row is None:
                row = self.values[key] = [0] * (len(self.bounds) + 1) + [0.0]
        row[bisect_left(self.bounds, value)] += 1    # bisect_left: a value equal to a bound is in its bucket
        row[-1] += value

    def family(self, rows: dict[Key, list[float]]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        for key, row in sorted(rows.items()):
            running, buckets = 0.0, []
            for le, count in zip(self._les, row, strict=False):     # the row's last item is the sum
                running += count
                buckets.append((le, running))
            family.add_metric(key, buckets, row[-1])
        return family


Family = Counter | Histogram


class Counts:
    """The families counted on the request path, and their sums over every
    process's snapshot as prometheus-client metric families."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Counter:
        family = self.families[name] = Counter(name, help_text, labels)
        return family

    def histogram(self, name: str, help_text: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> Histogram:
        family = self.families[name] = Histogram(name, help_text, labels, bounds)
        return family

    def snapshot(self) -> Snapshot:
        """This process's counts, copied: {family: [[label values, value or bucket row], ...]}."""
        return {name: [[k, v[:] if isinstance(v, list) else v] for k, v in f.values.items()]
                for name, f in self.families.items() if f.values}

    def summed(self, snapshots: Iterable[Snapshot]) -> list[Metric]:
        """The families added up over `snapshots`. A counter without labels reads
        0 before its first count, so a panel or alert on it has a series from the start."""
        merged: dict[str, dict[Key, Any]] = {
            name: {(): 0.0} if isinstance(f, Counter) and not f.labels else {} for name, f in self.families.items()}
        for snap in snapshots:
            for name, rows in snap.items():
                family, into = self.families.get(name), merged.get(name)
                if family is None or into is None:
                    continue            # a family this version no longer has
                for labels, value in rows:
                    key = tuple(labels)
                    if len(key) != len(family.labels):
                        continue
                    if key not in into and len(into) >= MAX_LABEL_SETS:
                        key = family.other      # processes' sets differ: the sum is capped too
                    if isinstance(family, Counter):
                        into[key] = into.get(key, 0.0) + value
                    elif len(value) == len(family.bounds) + 2:   # skip rows of another bucket layout
                        have = into.get(key)
                        into[key] = list(value) if have is None else [a + b for a, b in zip(have, value, strict=True)]
        return [f.family(merged[name]) for name, f in self.families.items()]


class _Families:
    """A prometheus-client collector of families already made: one scrape's sums, or its gauges."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def describe(self) -> list[Metric]:
        return self.families    # names, so the registry refuses a gauge named like a counted family

    def collect(self) -> list[Metric]:
        return self.families


def render(snapshots: Iterable[Snapshot], gauges: Iterable[Metric] = ()) -> bytes:
    """The text format (0.0.4): the counts summed over `snapshots`, then `gauges`
    (prometheus-client `GaugeMetricFamily`s made for this scrape)."""
    registry = CollectorRegistry()
    registry.register(_Families(REGISTRY.summed(snapshots)))
    registry.register(_Families(gauges))
    return generate_latest(registry)


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(float(bound))


# --- the families -------------------------------------------------------------

REGISTRY = Counts()
_m = REGISTRY      # a metric is one line below

REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
VIDEO_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

REQUESTS = _m.counter("gateway_requests_total",
                      "Answered /v1 chat, embeddings, responses and video-creation requests, by public model, the "
                      "provider that answered (\"\" if none), HTTP status and the API called.",
                      ("model", "provider", "status", "endpoint"))
TOKENS = _m.counter("gateway_tokens_total", "Tokens, by direction: in (prompt) and out (completion).",
                    ("model", "provider", "direction"))
COST = _m.counter("gateway_cost_usd_total", "What answered requests cost, in USD, at the configured prices.",
                  ("model", "provider"))
RATE_LIMITED = _m.counter("gateway_rate_limited_total", "Requests refused by a limit or budget, by what refused them.",
                          ("reason",))
FAILOVERS = _m.counter("gateway_failovers_total",
                       "Attempts made on another target after a failed attempt, within one request.", ("model",))
RETRIES = _m.counter("gateway_retries_total",
                     "Attempts made again on a target that already failed, within one request.", ("model",))
CACHE_HITS = _m.counter("gateway_cache_hits_total", "Requests answered from the response cache.", ("model",))
CACHE_MISSES = _m.counter("gateway_cache_misses_total",
                          "Requests to a cached model that were not answered from the cache.", ("model",))
VIDEO_JOBS = _m.counter("gateway_video_jobs_total",
                        "Video jobs by what happened to them: accepted, completed, failed, cancelled.",
                        ("model", "provider", "status"))
BATCHES = _m.counter("gateway_batches_total", "Batches that ended, by how: completed, failed, cancelled, expired.",
                     ("status",))
BATCH_REQUESTS = _m.counter("gateway_batch_requests_total",
                            "Batches' requests answered (each counted once, by the process that kept its answer), "
                            "by result (ok, failed) and by who ran them (gateway, native).", ("result", "run"))
WEBHOOKS = _m.counter("gateway_webhook_deliveries_total",
                      "Webhook delivery attempts by result: delivered, retried (to be tried again), failed (given up).",
                      ("result",))
STORE_ERRORS = _m.counter("gateway_state_store_errors_total", "Calls to the state store that failed or timed out.")
UNPRICED = _m.counter("gateway_unpriced_requests_total",
                      "Answered requests whose provider/model has no price (recorded at cost 0).",
                      ("model", "provider"))
REQUEST_LOG_DROPPED = _m.counter("gateway_request_log_dropped_total",
                                 "Request log records dropped unwritten: past the records a process holds while the "
                                 "store is slow or down.")
DURATION = _m.histogram("gateway_request_duration_seconds",
                        "From the request's arrival to the end of its answer (a stream's last chunk).",
                        ("model",), REQUEST_BUCKETS)
OVERHEAD = _m.histogram("gateway_overhead_seconds",
                        "The gateway's own time in a request, upstream waits excluded (x-gateway-overhead-ms).",
                        ("model",), OVERHEAD_BUCKETS)
TTFT = _m.histogram("gateway_time_to_first_token_seconds",
                    "Streams: from the request's arrival to its first chunk sent.", ("model",), REQUEST_BUCKETS)
VIDEO_SECONDS = _m.histogram("gateway_video_generation_seconds",
                             "A video run, from its start to its files stored.", ("provider",), VIDEO_BUCKETS)


# --- snapshots, one file per process --------------------------------------------

_own: tuple[int, str] = (-1, "")


def own_file_name() -> str:
    """`<pid>-<start>`: a later process that reuses the pid does not overwrite a dead one's counts."""
    global _own
    pid = os.getpid()
    if _own[0] != pid:
        _own = (pid, f"{pid}-{time.time_ns():x}.json")
    return _own[1]


def folder_of(data_dir: str) -> Path:
    return Path(data_dir) / "metrics"


def clear(data_dir: str) -> None:
    """Forget earlier runs' counts (`gateway serve`, before its workers start)."""
    folder = folder_of(data_dir)
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix in (".json", ".tmp"):
                path.unlink(missing_ok=True)


def write_snapshot(folder: Path, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / own_file_name()
    temp = path.with_suffix(".tmp")
    temp.write_bytes(data)
    os.replace(temp, path)      # readers see the old file or the new one, never half of one


def read_others(folder: Path) -> list[Snapshot]:
    """Every other process's last snapshot in `folder` (this one's is read live)."""
    own = own_file_name()
    out: list[Snapshot] = []
    try:
        paths = [p for p in folder.iterdir() if p.suffix == ".json" and p.name != own]
    except FileNotFoundError:
        return out
    for path in paths:
        try:
            out.append(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError) as e:
            log.warning("metrics snapshot %s unreadable: %s", path, e)
    return out


async def scrape(data_dir: str, gauges: Iterable[Metric] = ()) -> bytes:
    """The answer to GET /metrics: every process's counts, then the gauges."""
    own = REGISTRY.snapshot()      # taken on the loop: no count changes meanwhile
    folder = folder_of(data_dir)

    def answer() -> bytes:
        try:
            write_snapshot(folder, orjson.dumps(own))
            others = read_others(folder)
        except OSError as e:
            log.warning("metrics snapshots in %s unusable: %s", folder, e)
            others = []
        return render([own, *others], gauges)
    return await asyncio.to_thread(answer)     # off the loop: rendering costs ~5 µs a sample (bench/metrics_cost.py)


class Snapshots:
    """This process's snapshot written every second, and once more at stop."""

    def __init__(self, data_dir: str) -> None:
        self.folder = folder_of(data_dir)
        self._task: asyncio.Task | None = None

    def start(self) -> Snapshots:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-snapshots")
        return self

    async def _run(self) -> None:
        last = b""
        while True:
            await asyncio.sleep(_SNAPSHOT_EVERY_S)
            data = orjson.dumps(REGISTRY.snapshot())    # taken on the loop: no count changes meanwhile
            if data != last:
                try:
                    await asyncio.to_thread(write_snapshot, self.folder, data)
                    last = data
                except OSError as e:
                    log.warning("metrics snapshot not written to %s: %s", self.folder, e)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            write_snapshot(self.folder, orjson.dumps(REGISTRY.snapshot()))
        except OSError as e:
            log.warning("metrics snapshot not written to %s: %s", self.folder, e)


def start(data_dir: str) -> Snapshots:
    """Called in the app's lifespan startup; `await .stop()` at shutdown."""
    return Snapshots(data_dir).start()
