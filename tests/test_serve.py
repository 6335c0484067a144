"""The README's run command: `gateway serve` on the shipped config, no keys,
no Redis, no GPU, answering the official SDK."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai

from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_serve_shipped_config_answers_the_sdk(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GATEWAY_"))}
    env["GATEWAY_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-demo", max_retries=0)
        models = {m.id for m in client.models.list()}
        assert {"mock-chat", "mock-embed", "mock-failover", "fast-chat"} <= models
        assert "gpt-4.1-mini" not in models            # no OPENAI_API_KEY: that provider is off
        done = client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "hello"}])
        assert done.choices[0].message.content.startswith("mock")
        fast = client.chat.completions.with_raw_response.create(model="fast-chat",
                                                                messages=[{"role": "user", "content": "x"}])
        assert fast.headers["x-gateway-provider"] == "mock"
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["status"] == "ready"
        picture = client.images.generate(model="mock-image", prompt="a kite", size="256x256")
        assert picture.data[0].b64_json
        spoken = client.audio.speech.create(model="mock-tts", voice="alloy", input="a kite", response_format="wav")
        heard = client.audio.transcriptions.create(model="mock-stt", file=("kite.wav", spoken.content))
        assert spoken.content.startswith(b"RIFF") and heard.text.startswith("Mock transcription")
        _the_articles_video_request(port)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode in (0, -15), out      # uvicorn re-raises SIGTERM after a clean shutdown
    assert b"Application shutdown complete" in out
    assert b"Traceback" not in out


def test_serve_refuses_a_bad_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [{name: a, route: {targets: [{provider: nope}]}}]\n")
    r = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "models[0].route.targets[0].provider: unknown provider 'nope'" in r.stdout


def test_workers_without_redis_refuse_limits_they_would_multiply(tmp_path):
    """Embedded state is per process: with limits or budgets, `--workers 2` would
    count each twice over, so it is refused, saying why; without them it serves."""
    cfg = tmp_path / "limited.yaml"
    cfg.write_text("auth: {keys: [{name: a, key: sk-a, limits: {rpm: 10}, budget: {usd: 1}}]}\n"
                   "providers: [{name: mock, type: mock}]\n"
                   "models: [{name: m, route: {targets: [{provider: mock}]}}]\n"
                   f"state: {{data_dir: {tmp_path}}}\n")
    r = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(cfg), "--workers", "2"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "state.redis_url" in r.stderr and "key budgets" in r.stderr and "key limits" in r.stderr


def _the_articles_video_request(port: int) -> None:
    """The video article's request, as its readers send it: its path, body and model name."""
    from tests.video.conftest import decode_mp4
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", headers={"authorization": "Bearer sk-demo"})
    created = api.post("/video/generations", json={"model": "sora-v1", "prompt": "a paper boat on a pond",
                                                   "duration": 5, "resolution": "480p", "seed": 7}).json()
    assert created["job_id"] == created["id"] and created["status"] in ("queued", "in_progress"), created
    deadline = time.time() + 120
    while (job := api.get(f"/video/generations/{created['job_id']}").json())["status"] in ("queued", "in_progress"):
        assert time.time() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "completed", job
    assert job["model"] == "sora-2" and (job["duration"], job["resolution"]) == (5, "854x480")
    decoded = decode_mp4(httpx.get(job["video_url"]).content)        # a signed link: no key needed
    assert (decoded.width, decoded.height, decoded.frames) == (854, 480, 5 * 8)
