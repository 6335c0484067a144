"""Parses wrk output and assembles bench/run.sh's Markdown report.

    python bench/report.py wrk FILE            # one wrk run, as JSON
    python bench/report.py table WORKDIR OUT   # the whole report (run.sh calls this)
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(text: str) -> dict:
    """requests/s, latency percentiles (ms) and error counts from `wrk --latency` output."""
    out: dict = {"rps": None, "p50": None, "p75": None, "p90": None, "p99": None,
                 "requests": None, "non2xx": 0, "socket_errors": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    for pct, value in re.findall(r"^\s+(50|75|90|99)(?:\.0+)?%\s+(\S+)", text, re.M):
        out[f"p{pct}"] = _ms(value)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = sum(int(g) for g in m.groups())
    return out


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _plus(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a - b:+.2f}"


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def table(work: Path) -> str:
    env = os.environ
    conns = list(dict.fromkeys(env.get("BENCH_CONNS", "16 64").split()))
    lines = [
        "# Gateway overhead: direct vs through the gateway",
        "",
        f"- when: {env.get('BENCH_WHEN', '?')}; host: {env.get('BENCH_HOST', '?')}",
        f"- wrk: `-t{env.get('WRK_THREADS', '?')} -d{env.get('DURATION', '?')} --latency` "
        f"(after a {env.get('WARMUP', '?')} warmup per target), script bench/post.lua; "
        "wrk, nginx and the gateway share the same cores",
        f"- upstream: nginx, 1 worker, fixed answers from memory; gateway: 1 process ({env.get('BENCH_PY', '?')})",
        "",
        "## Non-streaming chat (`POST /v1/chat/completions`)",
        "",
        "| target | conns | req/s | p50 ms | p90 ms | p99 ms | errors | gateway CPU µs/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    runs: dict[tuple[str, str], dict] = {}
    labels = {"direct": "direct → nginx", "gateway": "gateway → nginx (`bench-chat`)",
              "mock": "gateway, `mock-chat` (no upstream)",
              "responses": "`/v1/responses` → chat upstream (`store: false`)",
              "responses-stored": "`/v1/responses` → chat upstream (stored)",
              "messages": "`/v1/messages` → chat upstream"}
    for name in ("direct", "gateway", "mock", "responses", "responses-stored", "messages"):
        for c in conns:
            text = _read(work / f"wrk-{name}-c{c}.txt")
            if text is None:
                continue
            r = parse_wrk(text)
            cpu = _read(work / f"cpu-{name}-c{c}.txt")
            if cpu and r["requests"]:
                r["cpu_us"] = float(cpu) * 1e6 / r["requests"]
            runs[(name, c)] = r
            errors = r["non2xx"] + r["socket_errors"]
            lines.append(f"| {labels[name]} | {c} | {_f(r['rps'], '{:.0f}')} | {_f(r['p50'])} | {_f(r['p90'])} "
                         f"| {_f(r['p99'])} | {errors} | {_f(r.get('cpu_us'), '{:.0f}')} |")
    lines += ["", "Added by the gateway (gateway − direct):", "",
              "| conns | p50 ms | p99 ms | req/s ratio |", "|---:|---:|---:|---:|"]
    for c in conns:
        d, g = runs.get(("direct", c)), runs.get(("gateway", c))
        if d and g:
            ratio = f"{g['rps'] / d['rps']:.2f}" if d["rps"] and g["rps"] else "n/a"
            lines.append(f"| {c} | {_plus(g['p50'], d['p50'])} | {_plus(g['p99'], d['p99'])} | {ratio} |")
    for api in ("responses", "messages"):
        lines += ["", f"{api.capitalize()} against chat, through the gateway ({api} − gateway):", "",
                  "| conns | p50 ms | req/s ratio |", "|---:|---:|---:|"]
        for c in conns:
            g, r = runs.get(("gateway", c)), runs.get((api, c))
            if g and r:
                ratio = f"{r['rps'] / g['rps']:.2f}" if g["rps"] and r["rps"] else "n/a"
                lines.append(f"| {c} | {_plus(r['p50'], g['p50'])} | {ratio} |")

    td, tg = _read(work / "ttfb-direct.json"), _read(work / "ttfb-gateway.json")
    if td and tg:
        d, g = json.loads(td), json.loads(tg)
        lines += ["", f"## Streaming: time to first body byte (`bench-stream`, {g['n']} sequential requests, "
                      "one keep-alive connection)", "",
                  "| target | TTFB p50 ms | TTFB p99 ms | whole stream p50 ms | errors |", "|---|---:|---:|---:|---:|",
                  f"| direct → nginx | {d['ttfb_p50']:.2f} | {d['ttfb_p99']:.2f} | {d['total_p50']:.2f} "
                  f"| {d['errors']} |",
                  f"| gateway → nginx | {g['ttfb_p50']:.2f} | {g['ttfb_p99']:.2f} | {g['total_p50']:.2f} "
                  f"| {g['errors']} |",
                  f"| added | {g['ttfb_p50'] - d['ttfb_p50']:+.2f} | {g['ttfb_p99'] - d['ttfb_p99']:+.2f} "
                  f"| {g['total_p50'] - d['total_p50']:+.2f} | |"]
        if g.get("overhead_p50") is not None:
            lines += ["", f"Gateway's own `x-gateway-overhead-ms` on those streams: p50 {g['overhead_p50']:.3f} ms, "
                          f"p99 {g['overhead_p99']:.3f} ms."]

    rss = {k: v for k, v in (line.split("=", 1) for line in (_read(work / "rss.txt") or "").split())}
    if rss:
        mb = lambda kb: f"{int(kb) / 1024:.1f} MiB"  # noqa: E731
        lines += ["", "## Gateway memory (VmRSS)", "",
                  "| idle, before load | after load |", "|---:|---:|",
                  f"| {mb(rss['before'])} | {mb(rss['after'])} |"]

    uc = _read(work / "upstream-clients.json")
    if uc:
        u = json.loads(uc)
        lines += ["", "## Upstream client: the gateway's pool, aiohttp, httpx (bench/upstream_clients.py)", "",
                  f"A bare ASGI pass-through proxy (uvicorn + httptools + uvloop, 1 process) to the same nginx, "
                  f"wrk `-t{u['threads']} -c{u['connections']} -d{u['duration']}`.", "",
                  "| client | req/s | p50 ms | p99 ms | errors | proxy CPU µs/req |", "|---|---:|---:|---:|---:|---:|"]
        for name, r in u["results"].items():
            lines.append(f"| {name} | {_f(r['rps'], '{:.0f}')} | {_f(r['p50'])} | {_f(r['p99'])} "
                         f"| {r['non2xx'] + r['socket_errors']} | {_f(r.get('cpu_us'), '{:.0f}')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "wrk":
        print(json.dumps(parse_wrk(Path(argv[1]).read_text())))
        return 0
    if len(argv) == 2 and argv[0] == "table":
        sys.stdout.write(table(Path(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
