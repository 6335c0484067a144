"""Which upstream client the gateway should send with: its own pool
(providers/connections.py), aiohttp, or httpx.

A minimal raw-ASGI pass-through proxy (uvicorn + httptools + uvloop, one
process, no other gateway code) forwards each POST body to the fake nginx
upstream through each pooled keep-alive client in turn; wrk measures each the
same way.

    python bench/upstream_clients.py --upstream http://127.0.0.1:18081 [-d 5] [-c 16] [-t 2]

(bench/run.sh starts the nginx upstream and runs this when UPSTREAM_CLIENTS=1.)
Internally it re-runs itself as `... serve --client pool|aiohttp|httpx --port N`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report import parse_wrk  # noqa: E402

CLIENTS = ("pool", "aiohttp", "httpx")
_FORWARD = {"content-type": "application/json"}


# --- the proxy ---------------------------------------------------------------

def make_app(kind: str, upstream: str):
    upstream = upstream.rstrip("/")
    state: dict = {}

    async def open_client():
        if kind == "pool":
            sys.path.insert(0, str(HERE.parent))
            from providers.connections import Pool
            return Pool(max_connections=256, keepalive_s=30)
        if kind == "aiohttp":
            import aiohttp
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
                                         timeout=aiohttp.ClientTimeout(total=60),
                                         skip_auto_headers=("User-Agent",))
        import httpx
        return httpx.AsyncClient(limits=httpx.Limits(max_connections=256, max_keepalive_connections=256,
                                                     keepalive_expiry=30),
                                 timeout=httpx.Timeout(60.0))

    async def forward(url: str, body: bytes) -> tuple[int, bytes, bytes]:
        client = state["client"]
        if kind == "pool":
            r = await client.request("POST", url, _FORWARD, body, 60)
            data = await r.read()
            return r.status, (r.headers.get("content-type") or "application/json").encode(), data
        if kind == "aiohttp":
            async with client.post(url, data=body, headers=_FORWARD) as r:
                data = await r.read()
                return r.status, r.headers.get("content-type", "application/json").encode(), data
        r = await client.post(url, content=body, headers=_FORWARD)
        return r.status_code, r.headers.get("content-type", "application/json").encode(), r.content

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    state["client"] = await open_client()
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await (state["client"].aclose() if kind == "httpx" else state["client"].close())
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        try:
            status, ctype, data = await forward(upstream + scope["path"], b"".join(chunks))
        except Exception as e:  # a bench proxy: answer 502 so wrk counts it as an error
            status, ctype, data = 502, b"text/plain", f"{type(e).__name__}: {e}".encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    return app


def serve(args) -> int:
    import uvicorn
    uvicorn.run(make_app(args.client, args.upstream), host="127.0.0.1", port=args.port, http="httptools",
                loop="uvloop", log_level="warning", access_log=False, lifespan="on", server_header=False)
    return 0


# --- the measurement ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(url: str, deadline_s: float = 15) -> None:
    body = b'{"model":"bench-chat","messages":[{"role":"user","content":"hi"}]}'
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            req = urllib.request.Request(url, data=body, headers=_FORWARD)
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise SystemExit(f"proxy at {url} did not answer 200 in {deadline_s}s: {last}")


def _wrk(wrk: str, url: str, threads: int, conns: int, duration: str) -> str:
    cmd = [wrk, f"-t{threads}", f"-c{conns}", f"-d{duration}", "--latency", "-s", str(HERE / "post.lua"), url]
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env={**os.environ, "BENCH_MODEL": "bench-chat"}).stdout


def measure(args) -> int:
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("wrk not found on PATH")
    duration = args.duration + ("s" if args.duration.isdigit() else "")
    warmup = args.warmup + ("s" if args.warmup.isdigit() else "")
    results: dict[str, dict] = {}
    for kind in CLIENTS:
        port = _free_port()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        proc = subprocess.Popen([sys.executable, __file__, "serve", "--client", kind, "--port", str(port),
                                 "--upstream", args.upstream])
        try:
            _wait_ready(url)
            _wrk(wrk, url, args.threads, args.connections, warmup)
            cpu0 = _cpu_s(proc.pid)
            out = _wrk(wrk, url, args.threads, args.connections, duration)
            cpu = _cpu_s(proc.pid) - cpu0
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        r = parse_wrk(out)
        if r["requests"]:
            r["cpu_us"] = cpu * 1e6 / r["requests"]
        results[kind] = r
        print(f"{kind:8s} {r['rps'] or 0:8.0f} req/s  p50 {r['p50']} ms  p99 {r['p99']} ms  "
              f"errors {r['non2xx'] + r['socket_errors']}  proxy CPU {r.get('cpu_us', 0):.0f} µs/req", flush=True)
    p, a, h = (results[k]["rps"] for k in CLIENTS)
    if p and a and h:
        print(f"pool / aiohttp: {p / a:.2f}x, aiohttp / httpx: {a / h:.2f}x the requests per second")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"upstream": args.upstream, "threads": args.threads,
                                                   "connections": args.connections, "duration": duration,
                                                   "results": results}, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="the gateway's pool, aiohttp and httpx as a pass-through proxy's client")
    sub = ap.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="(internal) run one proxy")
    s.add_argument("--client", choices=CLIENTS, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--upstream", required=True)
    ap.add_argument("--upstream", help="the fake upstream's base URL, e.g. http://127.0.0.1:18081")
    ap.add_argument("-d", "--duration", default=os.environ.get("DURATION", "5s"))
    ap.add_argument("--warmup", default=os.environ.get("WARMUP", "2s"))
    ap.add_argument("-c", "--connections", type=int, default=16)
    ap.add_argument("-t", "--threads", type=int, default=int(os.environ.get("WRK_THREADS", "2")))
    ap.add_argument("--json-out")
    args = ap.parse_args()
    if args.cmd == "serve":
        return serve(args)
    if not args.upstream:
        ap.error("--upstream is required (the nginx fake's base URL; bench/run.sh starts one)")
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
