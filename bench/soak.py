"""The soak: mixed traffic against two gateway replicas on one Redis for a
while, with Redis killed (and restarted from its append-only file) and one
replica killed (and restarted) midway, reporting what was lost, the 5xx answers, and each
replica's memory over time.

    .venv/bin/python bench/soak.py                      # 10 minutes
    SOAK_S=120 .venv/bin/python bench/soak.py           # a shorter run

Needs `redis-server` on PATH and the project's venv. Everything listens on
127.0.0.1 on free ports, in a temp dir, and is stopped at the end. The report
is printed and written to bench/results/soak.md.

Traffic, spread over both replicas (a client that cannot connect to one tries
the other, as a load balancer would): non-streaming chat, streaming chat,
embeddings, a small mock video every few seconds (polled to the end), and a
config edit through the admin API every 20 s. "Lost" counts requests that
neither replica answered and videos accepted but never finished.
"""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOAK_S = float(os.environ.get("SOAK_S", "600"))
CONCURRENCY = int(os.environ.get("SOAK_CONCURRENCY", "8"))
KEY = "sk-soak"
ADMIN = "soak-admin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Redis:
    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("soak: redis-server is not on PATH")
        # Persistence on, as a production Redis has it: killed, it comes back with its data.
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                                      str(self.folder), "--save", "", "--appendonly", "yes",
                                      "--appendfsync", "always"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit("soak: redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Replica:
    def __init__(self, name: str, config: Path, log: Path) -> None:
        self.name = name
        self.config = config
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(self.config),
                                      "--port", str(self.port), "--log-level", "warning"],
                                     cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        sys.exit(f"soak: replica {self.name} did not start (see {self.log})")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


@dataclass
class Tally:
    answers: Counter = field(default_factory=Counter)      # (kind, status)
    lost: Counter = field(default_factory=Counter)         # kind -> requests no replica answered
    videos_accepted: set[str] = field(default_factory=set)
    videos_done: dict[str, str] = field(default_factory=dict)
    rss: list[tuple[float, str, float]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)


def _config(redis_port: int, data_dir: Path) -> dict:
    return {
        "state": {"redis_url": f"redis://127.0.0.1:{redis_port}/0", "data_dir": str(data_dir)},
        "auth": {"admin_key": ADMIN, "keys": [{"name": "soak", "key": KEY, "models": ["*"],
                                               "limits": {"rpm": 1_000_000, "concurrent": 1000},
                                               "budget": {"usd": 1_000_000, "period": "month"}}]},
        "providers": [{"name": "mock", "type": "mock", "latency_ms": 5, "video_sizes": ["320x180"],
                       "video_seconds": [1], "video_fps": 4}],
        "models": [{"name": "soak-chat", "kind": "chat", "route": {"targets": [{"provider": "mock"}]}, "retries": 1},
                   {"name": "soak-embed", "kind": "embedding", "route": {"targets": [{"provider": "mock"}]}},
                   {"name": "soak-video", "kind": "video", "route": {"targets": [{"provider": "mock"}]}}],
        "prices": {"mock/*": {"input_per_mtok": 1, "output_per_mtok": 2, "per_second": 0.001}},
        "videos": {"poll_after_ms": 200, "job_lease_s": 5},
    }


async def _send(tally: Tally, replicas: list[Replica], kind: str, method: str, path: str,
                **kw) -> httpx.Response | None:
    """One request, on a random replica, then the other if that one cannot be reached."""
    order = random.sample(replicas, len(replicas))
    for replica in order:
        try:
            async with httpx.AsyncClient(base_url=replica.url, timeout=30) as http:
                r = await http.request(method, path, **kw)
                if kind.endswith("stream"):
                    await r.aread()
        except httpx.TransportError:
            continue
        tally.answers[(kind, r.status_code)] += 1
        return r
    tally.lost[kind] += 1
    return None


async def _traffic(tally: Tally, replicas: list[Replica], until: float) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    chat = {"model": "soak-chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 16}
    while time.monotonic() < until:
        pick = random.random()
        if pick < 0.5:
            await _send(tally, replicas, "chat", "POST", "/v1/chat/completions", json=chat, headers=auth)
        elif pick < 0.8:
            await _send(tally, replicas, "chat stream", "POST", "/v1/chat/completions",
                        json={**chat, "stream": True}, headers=auth)
        else:
            await _send(tally, replicas, "embeddings", "POST", "/v1/embeddings",
                        json={"model": "soak-embed", "input": ["a", "b"]}, headers=auth)


async def _videos(tally: Tally, replicas: list[Replica], until: float) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    while time.monotonic() < until:
        r = await _send(tally, replicas, "video create", "POST", "/v1/videos", headers=auth,
                        json={"model": "soak-video", "prompt": "soak", "size": "320x180", "seconds": "1"})
        if r is not None and r.status_code == 200:
            tally.videos_accepted.add(r.json()["id"])
        await asyncio.sleep(3)


async def _edits(tally: Tally, replicas: list[Replica], until: float) -> None:
    admin = {"authorization": f"Bearer {ADMIN}"}
    n = 0
    while time.monotonic() < until:
        await asyncio.sleep(20)
        n += 1
        await _send(tally, replicas, "config edit", "PATCH", "/admin/config", headers=admin,
                    json={"breaker": {"failures": 5 + n % 3}})


async def _memory(tally: Tally, replicas: list[Replica], started: float, until: float) -> None:
    while time.monotonic() < until:
        for replica in replicas:
            if replica.proc is not None:
                rss = _rss_mib(replica.proc.pid)
                if rss is not None:
                    tally.rss.append((time.monotonic() - started, replica.name, rss))
        await asyncio.sleep(10)


async def _chaos(tally: Tally, redis: Redis, replicas: list[Replica], started: float) -> None:
    def note(what: str) -> None:
        tally.events.append((time.monotonic() - started, what))
        print(f"soak: {time.monotonic() - started:6.1f} s  {what}", flush=True)

    await asyncio.sleep(SOAK_S / 3)
    note("Redis killed")
    redis.kill()
    await asyncio.sleep(10)
    await asyncio.to_thread(redis.start)
    note("Redis restarted (with its data)")
    await asyncio.sleep(max(0.0, SOAK_S / 2 - SOAK_S / 3 - 10))
    victim = replicas[1]
    note(f"replica {victim.name} killed (SIGKILL)")
    victim.kill()
    await asyncio.sleep(10)
    await asyncio.to_thread(victim.start)
    note(f"replica {victim.name} restarted")


async def _settle_videos(tally: Tally, replicas: list[Replica]) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + 120
    pending = set(tally.videos_accepted)
    while pending and time.monotonic() < deadline:
        for video_id in list(pending):
            r = await _send(tally, replicas, "video poll", "GET", f"/v1/videos/{video_id}", headers=auth)
            if r is not None and r.status_code == 200 and r.json()["status"] in ("completed", "failed"):
                tally.videos_done[video_id] = r.json()["status"]
                pending.discard(video_id)
        await asyncio.sleep(1)


def _report(tally: Tally, took: float) -> str:
    lines = [f"# Soak: {took:.0f} s, 2 replicas on one Redis, {CONCURRENCY} clients", ""]
    lines += ["| when (s) | event |", "|---:|---|"] + [f"| {t:.0f} | {what} |" for t, what in tally.events] + [""]
    lines += ["| request | status | count |", "|---|---:|---:|"]
    for (kind, status), n in sorted(tally.answers.items()):
        lines.append(f"| {kind} | {status} | {n} |")
    total = sum(tally.answers.values())
    fivexx = sum(n for (_, status), n in tally.answers.items() if status >= 500)
    lost = sum(tally.lost.values())
    failed = sum(1 for s in tally.videos_done.values() if s == "failed")
    unfinished = len(tally.videos_accepted) - len(tally.videos_done)
    lines += ["", f"- requests answered: {total}; 5xx: {fivexx}; lost (no replica answered): {lost}"
              f" {dict(tally.lost) if lost else ''}",
              f"- videos accepted: {len(tally.videos_accepted)}; completed: {len(tally.videos_done) - failed}; "
              f"failed: {failed}; never finished: {unfinished}", ""]
    names = sorted({n for _, n, _ in tally.rss})
    lines += ["RSS (MiB), the largest sample in each minute (b restarts midway):", "",
              "| minute | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for minute in range(int(max((t for t, _, _ in tally.rss), default=0) // 60) + 1):
        row = []
        for name in names:
            values = [v for t, n, v in tally.rss if n == name and minute * 60 <= t < (minute + 1) * 60]
            row.append(f"{max(values):.1f}" if values else "")
        lines.append(f"| {minute + 1} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    redis = Redis(work)
    config = work / "gateway.yaml"
    config.write_text(yaml.safe_dump(_config(redis.port, work / "data")))
    replicas = [Replica("a", config, work / "a.log"), Replica("b", config, work / "b.log")]
    try:
        for replica in replicas:
            replica.start()
        tally = Tally()
        started = time.monotonic()
        until = started + SOAK_S
        print(f"soak: {SOAK_S:.0f} s against {', '.join(r.url for r in replicas)} (logs in {work})", flush=True)
        await asyncio.gather(*(_traffic(tally, replicas, until) for _ in range(CONCURRENCY)),
                             _videos(tally, replicas, until), _edits(tally, replicas, until),
                             _memory(tally, replicas, started, until), _chaos(tally, redis, replicas, started))
        await _settle_videos(tally, replicas)
        report = _report(tally, time.monotonic() - started)
    finally:
        for replica in replicas:
            replica.stop()
        redis.kill()
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.md").write_text(report)


if __name__ == "__main__":
    asyncio.run(main())
