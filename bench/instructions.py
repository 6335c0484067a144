"""Instructions a request costs the gateway, counted by valgrind's callgrind: a
figure that does not move with the machine's speed or its neighbours, so two
trees can be compared on a shared machine where req/s moves by 15% between runs.

One `gateway serve` runs under callgrind (not instrumented while it starts), in
front of the bench's nginx. For each case, warm-up requests first, then
counting on for exactly N requests sent one at a time on one keep-alive
connection, and the instructions of every thread of the process (the request
log's and the ledger's included) divided by N.

    .venv/bin/python bench/instructions.py                  # whole answers and streams, key without limits
    .venv/bin/python bench/instructions.py -n 1000 --cases bench-chat:sk-bench-limits:0
    .venv/bin/python bench/instructions.py --conns 16       # 16 connections at once, as wrk -c16

Needs `valgrind` (with `callgrind_control`) and `nginx`. Under callgrind a
request takes ~50 times as long, so the default 400 requests a case take a
minute or two, and starting the gateway about a minute.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from ttfb import Answer  # noqa: E402  (the raw-socket answer reader of bench/ttfb.py)

CASES = ["bench-chat:sk-bench:0", "bench-stream:sk-bench:1"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, seconds: float) -> None:
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"nothing answered on port {port} within {seconds:g}s")


def request(model: str, key: str, stream: bool) -> bytes:
    """The same small chat request as bench/post.lua."""
    body = (b'{"model":"' + model.encode() + b'","messages":[{"role":"system","content":"You are a terse assistant."},'
            b'{"role":"user","content":"In one sentence, what does an AI gateway add in front of a model server?"}],'
            b'"max_tokens":64,"temperature":0' + (b',"stream":true}' if stream else b"}"))
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + key.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def send(port: int, raw: bytes, n: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answer = Answer(sock)
    for _ in range(n):
        sock.sendall(raw)
        status, _, _, _ = answer.read(time.perf_counter())
        if status != 200:
            raise SystemExit(f"the gateway answered {status}")
    sock.close()


def send_on(port: int, raw: bytes, n: int, conns: int) -> None:
    """`n` requests over `conns` connections at once (the server sees them interleaved)."""
    if conns <= 1:
        send(port, raw, n)
        return
    threads = [threading.Thread(target=send, args=(port, raw, n // conns + (i < n % conns))) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def counted(work: Path, pid: int, before: set[str]) -> int:
    """The instructions of the dump callgrind just wrote (all threads)."""
    control(pid, "-d")
    for _ in range(100):
        new = set(glob.glob(str(work / f"callgrind.out.{pid}*"))) - before
        if new:
            break
        time.sleep(0.1)
    total = 0
    for name in new:
        time.sleep(0.2)     # written by then
        m = re.search(r"^totals: (\d+)", Path(name).read_text(errors="replace"), re.M)
        total += int(m.group(1)) if m else 0
        before.add(name)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=400, help="requests counted per case")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--conns", type=int, default=1,
                    help="connections sending at once (each its share of -n, one request at a time)")
    ap.add_argument("--cases", nargs="+", default=CASES, help="model:key:stream (stream 0 or 1)")
    ap.add_argument("--python", default=str(ROOT / ".venv/bin/python"))
    ap.add_argument("--root", default=str(ROOT), help="the tree whose gateway is counted (its own directory)")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"instructions: '{tool}' not found (apt-get install valgrind nginx)")

    work = Path(tempfile.mkdtemp(prefix="gateway-instructions."))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        nginx_port, port = free_port(), free_port()
        conf = (HERE / "nginx.conf.template").read_text().replace("__PORT__", str(nginx_port)) \
            .replace("__PREFIX__", str(work))
        (work / "nginx.conf").write_text(conf)
        procs.append(subprocess.Popen(["nginx", "-p", str(work), "-c", str(work / "nginx.conf"), "-e",
                                       str(work / "error.log")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        env = {**os.environ, "BENCH_UPSTREAM": f"http://127.0.0.1:{nginx_port}", "BENCH_DATA_DIR": str(work / "data"),
               "BENCH_REDIS_URL": "", "PYTHONHASHSEED": "0"}
        gateway = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={work}/callgrind.out.%p",
             args.python, "-m", "gateway", "serve", "--config", str(HERE / "gateway.bench.yaml"), "--port", str(port),
             "--log-level", "warning"],
            cwd=args.root, env=env, stdout=open(work / "gateway.log", "wb"), stderr=subprocess.STDOUT)
        procs.append(gateway)
        wait_http(port, 600)
        seen: set[str] = set()
        print("| case | instructions / request |\n|---|---:|")
        for case in args.cases:
            model, key, stream = case.split(":")
            raw = request(model, key, stream == "1")
            send(port, raw, args.warmup)
            counted(work, gateway.pid, seen)       # what came before: not counted
            control(gateway.pid, "-z")
            control(gateway.pid, "-i", "on")
            send_on(port, raw, args.n, args.conns)
            control(gateway.pid, "-i", "off")
            print(f"| {case} | {counted(work, gateway.pid, seen) / args.n:,.0f} |", flush=True)
        return 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("KEEP_WORK") == "1":
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
