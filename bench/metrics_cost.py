"""What the metrics cost one request, and one scrape, in this process alone.

    .venv/bin/python bench/metrics_cost.py            # from the repo root
    .venv/bin/python bench/metrics_cost.py --repeat 9

Times the calls `gateway/exchange.py` makes for each answered request (a
request counter, two histograms, two token counters, a cost counter), then the
same six through prometheus-client's own `Counter/Histogram.labels(...)`
for comparison, then rendering a scrape of ~30 and ~1,000 models. Each figure is the
median of `--repeat` runs, with the min and max beside it, in CPU time (this
process's), so that other work on a shared machine does not count.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.getcwd())      # the tree in the current directory, so two checkouts compare side by side

from gateway import metrics  # noqa: E402


def per_request(n: int) -> float:
    """µs for one request's worth of counts, as gateway/exchange.py makes them when it ends."""
    requests, duration, overhead, tokens, cost = (metrics.REQUESTS, metrics.DURATION, metrics.OVERHEAD,
                                                  metrics.TOKENS, metrics.COST)
    models = [f"model-{i % 8}" for i in range(64)]
    start = time.process_time()
    for i in range(n):
        model = models[i & 63]
        requests.inc((model, "openai", "200"))
        duration.observe((model,), 0.0123)
        overhead.observe((model,), 0.00042)
        tokens.inc((model, "openai", "in"), 19)
        tokens.inc((model, "openai", "out"), 10)
        cost.inc((model, "openai"), 0.000039)
    return (time.process_time() - start) / n * 1e6


def per_request_prometheus_client(n: int) -> float:
    """The same six counts through prometheus-client's own metric objects."""
    from prometheus_client import CollectorRegistry, Counter, Histogram
    registry = CollectorRegistry()
    requests = Counter("b_requests_total", "h", ("model", "provider", "status"), registry=registry)
    duration = Histogram("b_duration_seconds", "h", ("model",), buckets=metrics.REQUEST_BUCKETS, registry=registry)
    overhead = Histogram("b_overhead_seconds", "h", ("model",), buckets=metrics.OVERHEAD_BUCKETS, registry=registry)
    tokens = Counter("b_tokens_total", "h", ("model", "provider", "direction"), registry=registry)
    cost = Counter("b_cost_usd_total", "h", ("model", "provider"), registry=registry)
    models = [f"model-{i % 8}" for i in range(64)]
    start = time.process_time()
    for i in range(n):
        model = models[i & 63]
        requests.labels(model, "openai", "200").inc()
        duration.labels(model).observe(0.0123)
        overhead.labels(model).observe(0.00042)
        tokens.labels(model, "openai", "in").inc(19)
        tokens.labels(model, "openai", "out").inc(10)
        cost.labels(model, "openai").inc(0.000039)
    return (time.process_time() - start) / n * 1e6


def scrape_ms(models: int, n: int) -> float:
    """ms to render one scrape of `models` more model label sets (counts only, no gauges)."""
    for i in range(models):
        model = f"scrape-{i}"
        metrics.REQUESTS.inc((model, "openai", "200"))
        metrics.DURATION.observe((model,), 0.01)
    snapshot = metrics.REGISTRY.snapshot()
    render = getattr(metrics, "render", None) or metrics.REGISTRY.render    # this tree's or the older one's
    start = time.process_time()
    for _ in range(n):
        render([snapshot])
    return (time.process_time() - start) / n * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("-n", type=int, default=200_000, help="requests per timed run")
    args = ap.parse_args()
    scrape_ms(20, 1)    # the ~30 models: these and per_request's 8
    runs = [("per request, gateway.metrics", "µs", lambda: per_request(args.n)),
            ("per request, prometheus-client .labels()", "µs", lambda: per_request_prometheus_client(args.n)),
            ("scrape of ~30 models", "ms", lambda: scrape_ms(0, 200)),
            ("scrape of ~1,000 models", "ms", lambda: scrape_ms(1000, 5))]
    print(f"{metrics.__file__}")
    for name, unit, run in runs:
        run()   # warm up
        got = sorted(run() for _ in range(args.repeat))
        print(f"{name:<44} median {statistics.median(got):7.3f} {unit}  (min {got[0]:.3f}, max {got[-1]:.3f})")


if __name__ == "__main__":
    main()
