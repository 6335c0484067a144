"""Local video generation with `type: diffusers`, on CPU with tiny
random-weight pipelines built in code and saved with `save_pretrained`, then
loaded through the provider's own loading path, as a downloaded model would
be. In the gateway (embedded mode), and in `gateway worker` processes on a
real Redis: a worker SIGKILLed mid-job leaves the job to another; progress
rises; delete cancels."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import yaml

from tests.video.conftest import require_local_extra

require_local_extra()

from gateway import config as config_loader  # noqa: E402
from gateway.config.checks import ConfigError  # noqa: E402
from gateway.video.jobs import Job  # noqa: E402
from providers.diffusers.families import FAMILIES, num_frames  # noqa: E402
from tests.video.conftest import decode_mp4, mock_video, video_config  # noqa: E402
from tests.video.tiny_pipelines import build_cogvideox, build_hunyuan, build_ltx, build_wan  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {"ltx": build_ltx(root / "ltx"), "wan": build_wan(root / "wan"),
            "wan-i2v": build_wan(root / "wan-i2v", image_to_video=True),
            "cogvideox": build_cogvideox(root / "cogvideox"), "hunyuan": build_hunyuan(root / "hunyuan")}


def local(name: str, path: Path, **kw) -> dict:
    return {"name": name, "type": "diffusers", "pipeline": str(path), "video_sizes": ["64x32", "32x32"],
            "video_seconds": [1, 2], "steps": 2, "fps": 8, "cpu_threads": 1, **kw}


def model(name: str, *providers: str) -> dict:
    return {"name": name, "kind": "video",
            "route": {"strategy": "fallback", "targets": [{"provider": p} for p in providers]}}


@pytest.mark.parametrize("family", ["ltx", "wan", "cogvideox", "hunyuan"])
def test_text_to_video_in_the_gateway(start_gateway, pipelines, family):
    gw = start_gateway(video_config([local("gpu", pipelines[family])], [model("local-video", "gpu")]))
    client = gw.client()
    video = client.videos.create(model="local-video", prompt="a cat on a wall", size="64x32", seconds="1",
                                 extra_body={"seed": 1})
    progress = []
    while video.status in ("queued", "in_progress"):
        time.sleep(0.02)
        video = client.videos.retrieve(video.id)
        progress.append(video.progress)
    assert video.status == "completed", video.error
    assert progress == sorted(progress)
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    expected = num_frames(FAMILIES[family], 1, 8)       # 8 frames asked: LTX, CogVideoX make 8k+1, Wan, Hunyuan 4k+1
    assert (decoded.width, decoded.height, decoded.frames) == (64, 32, expected) == (64, 32, 9)
    assert decoded.codec in ("h264", "mpeg4")
    assert client.videos.download_content(video.id, variant="thumbnail").read()[:4] == b"RIFF"


@pytest.mark.parametrize("folder", ["ltx", "wan-i2v"])
def test_image_to_video_uses_the_reference(start_gateway, pipelines, folder):
    import io

    from PIL import Image
    gw = start_gateway(video_config([local("gpu", pipelines[folder])], [model("local-video", "gpu")]))
    picture = io.BytesIO()
    Image.new("RGB", (80, 40), (10, 200, 30)).save(picture, format="PNG")
    video = gw.client().videos.create_and_poll(model="local-video", prompt="it moves", size="64x32", seconds="1",
                                               input_reference=("ref.png", picture.getvalue(), "image/png"))
    assert video.status == "completed", video.error
    assert decode_mp4(gw.client().videos.download_content(video.id).read()).frames == 9


def test_an_image_to_video_pipeline_needs_an_image(start_gateway, pipelines):
    gw = start_gateway(video_config([local("gpu", pipelines["wan-i2v"])], [model("local-video", "gpu")]))
    with pytest.raises(openai.BadRequestError, match="input_reference"):
        gw.client().videos.create(model="local-video", prompt="no picture", size="64x32", seconds="1")
    assert gw.client().videos.list().data == []


def test_sizes_the_family_cannot_make_are_refused(start_gateway, pipelines):
    """A listed size the family cannot make is a config error; with `video_fit: native` a size
    not listed is a 400 that lists them (the default fits it: tests/video/test_video_fit.py)."""
    with pytest.raises(ConfigError) as e:
        config_loader.parse(yaml.safe_dump(video_config([local("gpu", pipelines["ltx"], video_sizes=["48x32"])],
                                                        [model("local-video", "gpu")])))
    assert any("multiples of 32" in line for line in e.value.errors)
    gw = start_gateway(video_config([local("gpu", pipelines["ltx"], video_fit="native")],
                                    [model("local-video", "gpu")]))
    with pytest.raises(openai.BadRequestError, match="Supported sizes for model 'local-video' are: 32x32, 64x32"):
        gw.client().videos.create(model="local-video", prompt="x", size="1280x720", seconds="1")
    with pytest.raises(openai.BadRequestError, match="Supported values for model 'local-video' are: '1', '2'"):
        gw.client().videos.create(model="local-video", prompt="x", size="64x32", seconds="4")


# -- workers on Redis ------------------------------------------------------------

def _worker_config(tmp_path: Path, redis_url: str, pipelines, **extra) -> Path:
    cfg = video_config([local("gpu", pipelines["ltx"]), local("gpu-slow", pipelines["ltx"], steps=200),
                        mock_video("mock", video_sizes=["64x32"])],
                       [model("local-video", "gpu"), model("slow-video", "gpu-slow"),
                        model("local-or-mock", "gpu", "mock")], **extra)
    cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
    cfg["auth"]["admin_key"] = "admin-secret"
    cfg["videos"]["job_lease_s"] = 1
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _start_worker(config: Path, *providers: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "gateway", "worker", "--config", str(config)]
    for p in providers:
        args += ["--provider", p]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_workers(loop, store, provider: str, n: int = 1, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while len(loop.run(store.workers.live(provider))) < n:
        assert time.time() < deadline, "no worker came up"
        time.sleep(0.1)


@pytest.fixture
def workers():
    started: list[subprocess.Popen] = []

    def start(config: Path, *providers: str) -> subprocess.Popen:
        started.append(_start_worker(config, *providers))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_worker_process_serves_the_gateway(start_gateway, redis_url, tmp_path, pipelines, workers, loop):
    config = _worker_config(tmp_path, redis_url, pipelines)
    gw = start_gateway(yaml.safe_load(config.read_text()))
    client = gw.client()

    # No worker yet: a local-only model refuses (429); one with a fallback goes to the mock.
    with pytest.raises(openai.RateLimitError, match="no live worker"):
        client.videos.create(model="local-video", prompt="x", size="64x32", seconds="1")
    raw = client.videos.with_raw_response.create(model="local-or-mock", prompt="x", size="64x32", seconds="1")
    assert raw.headers["x-gateway-provider"] == "mock"

    workers(config, "gpu", "gpu-slow")
    _wait_for_workers(loop, gw.runtime.store, "gpu")
    [info] = loop.run(gw.runtime.store.workers.live("gpu"))
    assert info["provider"] == "gpu" and info["pid"] > 0
    shown = gw.http(key="admin-secret").get("/admin/workers").json()["providers"]
    assert shown["gpu"]["runs_in_gateway"] is False and [w["pid"] for w in shown["gpu"]["workers"]] == [info["pid"]]

    completed = 'gateway_video_jobs_total{model="local-video",provider="gpu",status="completed"}'
    before = _sample(gw.http().get("/metrics").text, completed)
    video = client.videos.create_and_poll(model="local-video", prompt="a boat", size="64x32", seconds="2")
    assert video.status == "completed", video.error
    # The worker's counts join the gateway's /metrics (they share data_dir here).
    deadline = time.time() + 5
    while _sample(scraped := gw.http().get("/metrics").text, completed) != before + 1:
        assert time.time() < deadline, scraped
        time.sleep(0.2)
    assert 'gateway_video_workers{provider="gpu"} 1' in scraped
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert ((decoded.width, decoded.height, decoded.frames) == (64, 32, num_frames(FAMILIES["ltx"], 2, 8))
            == (64, 32, 17))


def _sample(text: str, series: str) -> float:
    """A series' value in a /metrics answer, 0 when absent (the test process's other gateways count too)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_worker_killed_mid_job_leaves_it_to_another(start_gateway, redis_url, tmp_path, pipelines, workers, loop):
    config = _worker_config(tmp_path, redis_url, pipelines)
    gw = start_gateway(yaml.safe_load(config.read_text()))
    client = gw.client()
    first = workers(config, "gpu-slow")
    _wait_for_workers(loop, gw.runtime.store, "gpu-slow")

    video = client.videos.create(model="slow-video", prompt="a long one", size="64x32", seconds="1")
    deadline = time.time() + 60
    while (seen := client.videos.retrieve(video.id)).progress < 2:
        assert seen.status in ("queued", "in_progress") and time.time() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()

    workers(config, "gpu-slow")
    done = client.videos.poll(video.id, poll_interval_ms=100)
    assert done.status == "completed", done.error
    assert decode_mp4(client.videos.download_content(video.id).read()).frames == 9
    assert Job.of(loop.run(gw.runtime.store.jobs.get(video.id))).runs == 2


def test_delete_cancels_the_run_on_the_worker(start_gateway, redis_url, tmp_path, pipelines, workers, loop):
    config = _worker_config(tmp_path, redis_url, pipelines)
    gw = start_gateway(yaml.safe_load(config.read_text()))
    client = gw.client()
    workers(config, "gpu-slow")
    _wait_for_workers(loop, gw.runtime.store, "gpu-slow")

    video = client.videos.create(model="slow-video", prompt="never mind", size="64x32", seconds="1")
    while client.videos.retrieve(video.id).progress < 2:
        time.sleep(0.05)
    client.videos.delete(video.id)
    # The worker stops between two steps and is free again: the next job starts at once.
    nxt = client.videos.create(model="slow-video", prompt="next", size="64x32", seconds="1")
    deadline = time.time() + 5
    while client.videos.retrieve(nxt.id).status == "queued":
        assert time.time() < deadline, "the cancelled run kept the worker busy"
        time.sleep(0.05)
    assert not (tmp_path / "data" / "videos" / video.id / "video.mp4").exists()
    assert loop.run(gw.runtime.store.jobs.get(video.id)) is None
