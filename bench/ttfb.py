"""Time to first body byte of streamed chat completions, sequential requests on one
keep-alive connection. Timed at the socket: the request goes out in one send, and the
first byte is the first one after the answer's head, so the client's own cost is a few
system calls, the same for every target (a client that parses each header, such as
http.client, would charge a gateway's extra headers, ~2 µs each, to the gateway).

    python bench/ttfb.py --url http://127.0.0.1:18080/v1/chat/completions --model bench-stream -n 500
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from urllib.parse import urlsplit


class Answer:
    """One HTTP/1.1 answer read off a raw socket: its head, then its body to the end
    (content-length or chunked), with when the first body byte arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read(self, t0: float) -> tuple[int, dict[str, str], bytes, float]:
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        while not self.buf:
            self._more()
        first_at = time.perf_counter() - t0
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while not self.buf.endswith(b"0\r\n\r\n"):      # the closing chunk (bench answers carry no trailers)
                self._more()
            body, self.buf = self.buf, b""
        else:
            length = int(headers.get("content-length", "0"))
            while len(self.buf) < length:
                self._more()
            body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body, first_at

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the connection closed mid-answer")
        self.buf += data


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
    request = (f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Type: application/json\r\n"
               f"Authorization: Bearer {args.key}\r\nAccept: text/event-stream\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    answer = Answer(sock)
    ttfb: list[float] = []
    total: list[float] = []
    overhead: list[float] = []
    errors = 0
    first_error = None
    for i in range(args.warmup + args.n):
        t0 = time.perf_counter()
        try:
            sock.sendall(request)
            status, headers, data, first_s = answer.read(t0)
            t2 = time.perf_counter()
        except (OSError, ValueError) as e:
            errors += 1
            first_error = first_error or repr(e)
            sock.close()
            sock = socket.create_connection((u.hostname, u.port or 80), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            answer = Answer(sock)
            continue
        if i < args.warmup:
            continue
        if status != 200 or b"data: [DONE]" not in data:
            errors += 1
            first_error = first_error or f"status {status}: {data[:300]!r}"
            continue
        ttfb.append(first_s * 1000)
        total.append((t2 - t0) * 1000)
        oh = headers.get("x-gateway-overhead-ms")
        if oh:
            overhead.append(float(oh))
    sock.close()
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
