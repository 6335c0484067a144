"""Time to first body byte of streamed chat completions, sequential requests on one
keep-alive connection (stdlib http.client, so the client's own cost is small and
the same for both targets).

    python bench/ttfb.py --url http://127.0.0.1:18080/v1/chat/completions --model bench-stream -n 500
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlsplit


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="full URL of a chat completions endpoint")
    ap.add_argument("--model", default="bench-stream")
    ap.add_argument("--key", default="sk-bench")
    ap.add_argument("-n", type=int, default=500, help="measured requests")
    ap.add_argument("--warmup", type=int, default=20, help="requests first, not measured")
    ap.add_argument("--json-out", help="write the summary here as JSON")
    args = ap.parse_args()

    u = urlsplit(args.url)
    body = json.dumps({
        "model": args.model, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "In one sentence, what does an AI gateway add?"}],
    }).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}",
               "Accept": "text/event-stream"}
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    ttfb: list[float] = []
    total: list[float] = []
    overhead: list[float] = []
    errors = 0
    first_error = None
    for i in range(args.warmup + args.n):
        t0 = time.perf_counter()
        try:
            conn.request("POST", u.path, body=body, headers=headers)
            resp = conn.getresponse()
            first = resp.read(1)
            t1 = time.perf_counter()
            rest = resp.read()
            t2 = time.perf_counter()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            errors += 1
            first_error = first_error or repr(e)
            continue
        ok = resp.status == 200 and first and b"data: [DONE]" in first + rest
        if resp.will_close:
            conn.close()
        if i < args.warmup:
            continue
        if not ok:
            errors += 1
            first_error = first_error or f"status {resp.status}: {(first + rest)[:300]!r}"
            continue
        ttfb.append((t1 - t0) * 1000)
        total.append((t2 - t0) * 1000)
        oh = resp.getheader("x-gateway-overhead-ms")
        if oh:
            overhead.append(float(oh))
    conn.close()
    if not ttfb:
        print(f"ttfb: every request failed ({errors}); first: {first_error}", file=sys.stderr)
        return 1
    summary = {
        "url": args.url, "model": args.model, "n": len(ttfb), "errors": errors,
        "ttfb_p50": statistics.median(ttfb), "ttfb_p99": _pct(ttfb, 99), "ttfb_mean": statistics.fmean(ttfb),
        "total_p50": statistics.median(total), "total_p99": _pct(total, 99),
        "overhead_p50": statistics.median(overhead) if overhead else None,
        "overhead_p99": _pct(overhead, 99) if overhead else None,
    }
    if first_error:
        summary["first_error"] = first_error
    print(f"{args.url} ({args.model}): n={len(ttfb)} errors={errors} "
          f"ttfb p50 {summary['ttfb_p50']:.3f} ms p99 {summary['ttfb_p99']:.3f} ms, "
          f"whole stream p50 {summary['total_p50']:.3f} ms")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
