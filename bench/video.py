"""Local video generation: what the gateway adds to a diffusers pipeline, and
what the fast profile gains over the stock call.

    .venv/bin/python bench/video.py                 # tiny random pipelines: runs anywhere, CPU included
    .venv/bin/python bench/video.py --full --fast   # GPU: full-size LTX-Video, random weights, 768x512, 121 frames

Steps (weights are random: speed does not depend on their values):
1. `bare`: the pipeline loaded the way the provider loads it, then the call
   alone (`pipe(...)`, `output_type="np"`), median of `--runs` after a warm-up.
2. `encode`: the MP4 + previews the gateway writes from those frames.
3. `gateway + worker`: a real `gateway serve` and a `gateway worker` on a real
   redis-server; the SDK submits the same job and polls it (every 20 ms) to
   completion. Overhead = (this - bare) / bare: queueing, claims, heartbeats,
   encoding, the store and the polling together.
4. `--fast`: the same bare call with bf16, an attention backend, VAE tiling and
   torch.compile of the denoiser, against the stock call (the first compiled
   call is a warm-up and not counted).

The report is printed and written to bench/results/video-latest.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from providers.diffusers import Options  # noqa: E402
from providers.diffusers.pipeline import generate, job_for, load  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(folder: Path, full: bool) -> Path:
    if full:
        from bench.video_pipelines import build_full_ltx
        return build_full_ltx(folder)
    from tests.video.tiny_pipelines import build_ltx
    return build_ltx(folder)


def options(path: Path, a: argparse.Namespace, **kw) -> Options:
    return Options(name="bench", type="diffusers", pipeline=str(path), family="ltx", device=a.device,
                   steps=a.steps, fps=a.fps, video_sizes=[a.size], video_seconds=[a.seconds], **kw)


def time_bare(opts: Options, a: argparse.Namespace, runs: int) -> tuple[list[float], object, float]:
    loaded = load(opts)
    width, height = (int(n) for n in a.size.split("x"))
    job = job_for(loaded.family, opts, "a red fox running through snow", None, width, height, a.seconds, 7)
    never = threading.Event()

    def once():
        _sync(loaded.device)
        started = time.perf_counter()
        frames = generate(loaded, job, opts.fps or loaded.family.fps, lambda p: None, never)
        _sync(loaded.device)
        return time.perf_counter() - started, frames

    warmup, frames = once()
    times = [once()[0] for _ in range(runs)]
    return times, frames, warmup


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def time_encode(frames, fps: int, runs: int) -> list[float]:
    from providers.media.encode import encode_rgb
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        encode_rgb(iter(frames), len(frames), fps)
        out.append(time.perf_counter() - started)
    return out


def time_through_gateway(path: Path, a: argparse.Namespace, runs: int, work: Path) -> list[float]:
    import openai

    redis_port, port = free_port(), free_port()
    config = {
        "server": {"port": port},
        "state": {"redis_url": f"redis://127.0.0.1:{redis_port}/0", "data_dir": str(work / "data")},
        "auth": {"keys": [{"name": "bench", "key": "sk-bench"}]},
        "providers": [{"name": "gpu", "type": "diffusers", "pipeline": str(path), "family": "ltx",
                       "device": a.device, "steps": a.steps, "fps": a.fps, "video_sizes": [a.size],
                       "video_seconds": [a.seconds]}],
        "models": [{"name": "local-video", "kind": "video", "route": {"targets": [{"provider": "gpu"}]}}],
        "videos": {"poll_after_ms": 20},
    }
    cfg = work / "gateway.yaml"
    cfg.write_text(yaml.safe_dump(config))
    procs = [subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                              stdout=subprocess.DEVNULL)]
    log = open(work / "processes.log", "w")
    try:
        time.sleep(0.3)
        for command in ("serve", "worker"):
            procs.append(subprocess.Popen([sys.executable, "-m", "gateway", command, "--config", str(cfg)],
                                          cwd=ROOT, stdout=log, stderr=log))
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench", max_retries=20)
        times = []
        for i in range(runs + 1):
            started = time.perf_counter()
            while True:   # the first submission waits for the worker to load and heartbeat
                try:
                    video = client.videos.create(model="local-video", prompt="a red fox running through snow",
                                                 size=a.size, seconds=str(a.seconds), extra_body={"seed": 7})
                    break
                except (openai.RateLimitError, openai.APIConnectionError):
                    time.sleep(0.2)
                    started = time.perf_counter()
            video = client.videos.poll(video.id, poll_interval_ms=20)
            assert video.status == "completed", video.error
            if i:     # the first run includes loading the weights in the worker
                times.append(time.perf_counter() - started)
        return times
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="full-size LTX-Video architecture (a GPU's work)")
    parser.add_argument("--fast", action="store_true", help="also time the fast profile")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default=None, help="WIDTHxHEIGHT (default 768x512 full, 64x32 tiny)")
    parser.add_argument("--seconds", type=int, default=None, help="default 5 full (121 frames at 24 fps), 2 tiny")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default 30 full, 20 tiny)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--attention", default="_native_flash", help="attention backend of the fast profile")
    a = parser.parse_args()
    a.size = a.size or ("768x512" if a.full else "64x32")
    a.seconds = a.seconds or (5 if a.full else 2)
    a.steps = a.steps or (30 if a.full else 20)

    work = Path(tempfile.mkdtemp(prefix="gateway-video-bench-"))
    try:
        path = build(work / "pipeline", a.full)
        stock = options(path, a)
        bare, frames, first = time_bare(stock, a, a.runs)
        encode = time_encode(frames, a.fps, a.runs)
        rows = [("bare pipeline call", bare), ("MP4 + previews from its frames", encode)]
        through = time_through_gateway(path, a, a.runs, work) if shutil.which("redis-server") else None
        if through:
            rows.append(("gateway + worker, submit to completed", through))
        fast = None
        if a.fast:
            fast_opts = options(path, a, dtype="bfloat16", attention=a.attention, vae_tiling=True, compile=True,
                                compile_mode="max-autotune-no-cudagraphs")
            fast, _, _ = time_bare(fast_opts, a, a.runs)
            rows.append(("fast profile, bare call", fast))
        report = _report(a, frames, rows, bare, through, fast, first)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "video-latest.md").write_text(report)
    return 0


def _report(a, frames, rows, bare, through, fast, first) -> str:
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() and a.device != "cpu" else \
        f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    med = statistics.median
    lines = [
        "# Local video: gateway overhead and the fast profile", "",
        f"- {'full-size LTX-Video architecture' if a.full else 'tiny LTX-Video'} with random weights; "
        f"{a.size}, {len(frames)} frames, {a.steps} steps; device: {device}; torch {torch.__version__}",
        f"- first bare call (warm-up, not counted): {first:.3f} s", "",
        "| what | median s | runs |", "|---|---:|---:|",
        *[f"| {name} | {med(t):.3f} | {len(t)} |" for name, t in rows], "",
    ]
    if through:
        added = med(through) - med(bare)
        lines.append(f"Gateway + worker add {added:.3f} s to the bare call: {100 * added / med(bare):.1f}% "
                     f"(of which encoding {med(rows[1][1]):.3f} s).")
    if fast:
        lines.append(f"Fast profile: {med(bare) / med(fast):.2f}x the stock call.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
