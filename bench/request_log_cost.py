"""What the request log costs: on the request path, and off it.

    .venv/bin/python bench/request_log_cost.py            # from the repo root
    .venv/bin/python bench/request_log_cost.py --repeat 9

A/B on the request path: `Exchange._count` (what gateway/exchange.py runs as
every request ends: the metrics, then the request log's one append) with
`logging.requests.enabled` on and off, runs interleaved; the difference is the
log's cost. Then `RequestLog.add` alone, and the router's part of every
request that the log's attempts ride on: an `Exchange` made, `router.send`
with a first attempt that answers at once (the provider's call a stub), and
`Exchange.routed`. Off the request path, per record:
turning the appended rows into records (the flusher's worker thread), the
stats they add to, and a 1,000-record batch written to the embedded store's
SQLite file. Each figure is the median of `--repeat` runs, with the min and
max beside it, in CPU time (this process's, all threads), so that other work
on a shared machine does not count.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.getcwd())      # the tree in the current directory, so two checkouts compare side by side

from gateway import config as config_loader  # noqa: E402
from gateway import request_log, router  # noqa: E402
from gateway.api.chat import CHAT  # noqa: E402
from gateway.asgi import Request  # noqa: E402
from gateway.exchange import Exchange  # noqa: E402
from gateway.runtime import Runtime  # noqa: E402
from gateway.services import Services  # noqa: E402
from gateway.store import EmbeddedStore, Retention  # noqa: E402
from gateway.store.request_stats import rollup  # noqa: E402
from providers.base import Call, Reply, Usage  # noqa: E402

CONFIG = """
auth: {keys: [{name: bench, key: sk-bench}]}
providers: [{name: upstream, type: mock}]
models: [{name: bench-chat, route: {targets: [{provider: upstream}]}}]
logging: {requests: {enabled: %s}}
"""
MESSAGES = [{"role": "user", "content": "Say hello in five words."}]


def exchange(rt: Runtime) -> Exchange:
    """An answered request as `_count` sees it at its end."""
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
             "headers": [(b"authorization", b"Bearer sk-bench"), (b"content-type", b"application/json")]}
    req = Request(scope, None, None)    # type: ignore[arg-type]
    req.sent_headers = [(b"x-gateway-provider", b"upstream"), (b"x-gateway-attempts", b"1"),
                        (b"x-gateway-cost-usd", b"0.0000608"), (b"x-gateway-overhead-ms", b"0.241")]
    req.sent_body = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}'
    x = Exchange(req, rt, CHAT)
    x.key = rt.keys.all()[0]
    x.model, x.provider, x.status, x.attempts = "bench-chat", "upstream", 200, 1
    x.usage, x.cost, x.overhead = Usage(24, 32), 60_800, b"0.241"
    x.data = {"model": "bench-chat", "messages": MESSAGES}
    return x


def routed_us(x: Exchange, n: int) -> float:
    """CPU µs per request for an Exchange made, routed to a target that answers at once, and let go of."""
    rt, req = x.rt, x.req
    served = rt.models["bench-chat"]
    reply = Reply(body=b"{}", usage=Usage(24, 32))

    async def answer(call: Call) -> Reply:
        return reply
    served.targets[0].provider.chat = answer     # type: ignore[method-assign]  # the upstream is not measured
    call = Call("chat", b"{}", {}, served.name)

    async def run() -> float:
        start = time.process_time()
        for _ in range(n):
            routed = Exchange(req, rt, CHAT)
            routed.routed(await router.send(served, call))
            routed.let_go_of_target()
        return (time.process_time() - start) / n * 1e6
    return asyncio.run(run())


def cpu_us(run: Callable[[], None], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        run()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("-n", type=int, default=50_000, help="requests per timed run (at most 100,000: the log's bound)")
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="request-log-bench-")
    services = Services(EmbeddedStore(folder))
    log = services.request_log
    on = exchange(Runtime(config_loader.parse(CONFIG % "true"), services))
    off = exchange(Runtime(config_loader.parse(CONFIG % "false"), services))

    def count(x: Exchange) -> float:
        log.pending.clear()
        return cpu_us(x._count, args.n)

    def add() -> float:
        log.pending.clear()
        return cpu_us(lambda: log.add(on, 0.0123, 0.000241, False), args.n)

    for _ in range(1000):
        log.add(on, 0.0123, 0.000241, False)
    rows = list(log.pending)
    records = request_log._records(rows)

    def per_record(fn: Callable[[], object]) -> float:
        start = time.process_time()
        fn()
        return (time.process_time() - start) / len(rows) * 1e6

    async def write() -> float:
        start = time.process_time()
        await services.store.requests.add(records, Retention(7, 1_000_000))
        return (time.process_time() - start) / len(records) * 1e6

    # As `gateway serve` tunes the collector (gateway/app.py `_tune_gc`): the appended tuples are young
    # objects, and how often they are scanned is part of what they cost.
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    print(f"{request_log.__file__}  ({args.n} requests a run, {args.repeat} runs)")
    results: dict[str, list[float]] = {"_count, log off": [], "_count, log on": []}
    count(on), count(off)       # warm up
    for _ in range(args.repeat):        # A and B interleaved
        results["_count, log off"].append(count(off))
        results["_count, log on"].append(count(on))
    results["RequestLog.add alone"] = [add() for _ in range(args.repeat)]
    results["router.send + Exchange.routed"] = [routed_us(on, args.n) for _ in range(args.repeat)]
    results["off the loop: rows -> records"] = [per_record(lambda: request_log._records(rows))
                                                for _ in range(args.repeat)]
    results["off the loop: rows -> stats"] = [per_record(lambda: rollup(records)) for _ in range(args.repeat)]
    results["SQLite: a 1,000-record batch"] = [asyncio.run(write()) for _ in range(args.repeat)]
    for name, got in results.items():
        got.sort()
        print(f"{name:<34} median {statistics.median(got):7.3f} µs  (min {got[0]:.3f}, max {got[-1]:.3f})")
    added = statistics.median(results["_count, log on"]) - statistics.median(results["_count, log off"])
    print(f"{'the log adds to a request':<34} {added:+.3f} µs (median on - median off)")
    asyncio.run(services.store.close())
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
