"""`gateway worker` follows config edits made through the admin API, as the
gateways do: new options apply to the next job, a changed pipeline is
reloaded before it, a removed provider drains (its job in progress
completes) and the worker exits 0, an added one is loaded and served.

On the embedded store the worker runs in the test's process, on the loop the
gateway runs on (the same `Worker.run` that `gateway worker` runs); on a real
redis-server it runs as a `gateway worker` process. Tiny random-weight
pipelines, built in code, loaded through the provider's own loading path."""
from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.video.conftest import require_local_extra

require_local_extra()

from gateway import config as config_loader  # noqa: E402
from gateway import live_config  # noqa: E402
from gateway.video.worker import Worker  # noqa: E402
from providers.base import VideoSpec  # noqa: E402
from providers.diffusers import PIPELINE_FIELDS, DiffusersProvider, Options  # noqa: E402
from providers.diffusers import pipeline as diffusers_pipeline  # noqa: E402
from tests.video.conftest import decode_mp4, video_config  # noqa: E402
from tests.video.tiny_pipelines import build_ltx, build_wan  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {"ltx": build_ltx(root / "ltx"), "wan": build_wan(root / "wan")}


def local(name: str, path: Path, **kw) -> dict:
    return {"name": name, "type": "diffusers", "pipeline": str(path), "video_sizes": ["64x32"],
            "video_seconds": [1], "steps": 2, "fps": 8, "cpu_threads": 1, "run_in_gateway": False, **kw}


def model(name: str, provider: str) -> dict:
    return {"name": name, "kind": "video", "route": {"strategy": "fallback", "targets": [{"provider": provider}]}}


def edit(gw, change, confirm: bool = False) -> int:
    """Apply `change(document)` through the admin API as a whole new document; the version made."""
    admin = gw.http(key=ADMIN)
    doc = admin.get("/admin/config").json()["config"]
    change(doc)
    r = admin.put("/admin/config" + ("?confirm=disable" if confirm else ""), json=doc)
    assert r.status_code == 200, r.text
    return r.json()["version"]


def provider_in(doc: dict, name: str) -> dict:
    return next(p for p in doc["providers"] if p["name"] == name)


def on_version(loop, store, provider: str, version: int, timeout: float = 30) -> dict:
    """The worker's heartbeat for `provider` once it runs jobs on `version`."""
    deadline = time.time() + timeout
    while True:
        live = loop.run(store.workers.live(provider))
        if live and live[0].get("config_version") == version:
            return live[0]
        assert time.time() < deadline, f"the worker did not reach version {version} for '{provider}': {live}"
        time.sleep(0.05)


def video(client, model_name: str, timeout: float = 60) -> bytes:
    made = client.videos.create(model=model_name, prompt="a cat on a wall", size="64x32", seconds="1",
                                extra_body={"seed": 7})
    done = client.videos.poll(made.id, poll_interval_ms=50)
    assert done.status == "completed", done.error
    return client.videos.download_content(done.id).read()


def reference(path: Path, steps: int) -> bytes:
    """What the provider makes with `steps` for the request `video()` sends, run here directly."""
    provider = DiffusersProvider(Options(name="reference", type="diffusers", pipeline=str(path),
                                         video_sizes=["64x32"], video_seconds=[1], steps=steps, fps=8,
                                         cpu_threads=1))    # the worker's pipeline: no load of its own

    async def progress(_: int) -> None:
        pass

    spec = VideoSpec("reference", "m", "a cat on a wall", 1, 64, 32, seed=7)
    return asyncio.run(provider.video_run(spec, {}, progress)).mp4


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def loads(self) -> list[str]:
        return [line for line in self.lines if line.startswith("loaded ")]


@pytest.fixture
def gateway_log():
    """The gateway's log lines at INFO while the test runs (the worker's among them)."""
    logger, handler = logging.getLogger("gateway"), _Lines()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


# -- what determines the pipeline ---------------------------------------------------

def test_pipeline_fields_are_what_loading_reads(pipelines):
    base = dict(name="p", type="diffusers", pipeline=str(pipelines["wan"]), video_sizes=["64x32"],
                video_seconds=[1], steps=2, fps=8)
    key = DiffusersProvider(Options(**base)).weights_key()
    changed = {"pipeline": str(pipelines["ltx"]), "family": "ltx", "device": "cpu", "dtype": "float32",
               "cpu_offload": True, "vae_tiling": True, "vae_slicing": True, "compile": True,
               "compile_mode": "max-autotune", "attention": "flash", "cpu_threads": 1}
    assert set(changed) == set(PIPELINE_FIELDS)
    for field, value in changed.items():
        assert DiffusersProvider(Options(**{**base, field: value})).weights_key() != key, field
    for field, value in {"steps": 5, "guidance": 1.5, "fps": 16, "max_concurrent": 2, "max_queue": 3,
                         "video_sizes": ["32x32"], "video_seconds": [2], "run_in_gateway": True}.items():
        assert DiffusersProvider(Options(**{**base, field: value})).weights_key() == key, field

    class Reading:
        """The options, noting each one loading reads."""
        def __init__(self, options: Options) -> None:
            self.options, self.read = options, set()

        def __getattr__(self, name: str):
            self.read.add(name)
            return getattr(self.options, name)

    reading = Reading(Options(**{**base, "vae_tiling": True, "vae_slicing": True, "cpu_threads": 1}))
    diffusers_pipeline.load(reading)
    assert reading.read and reading.read <= set(PIPELINE_FIELDS), reading.read - set(PIPELINE_FIELDS)


# -- on the embedded store: the worker in this process --------------------------------

def test_edits_apply_to_the_next_job_and_reload_only_a_changed_pipeline(start_gateway, loop, tmp_path, pipelines,
                                                                        gateway_log, monkeypatch):
    monkeypatch.setattr(live_config, "_LOOK_EVERY_S", 0.2)   # the embedded store has no pub/sub: it is looked at
    cfg = video_config([local("gpu", pipelines["ltx"])], [model("local-video", "gpu")])
    cfg["state"] = {"data_dir": str(tmp_path / "data")}
    cfg["auth"]["admin_key"] = ADMIN
    gw = start_gateway(cfg)
    store, client = gw.runtime.store, gw.client()
    # Started for gpu, and for gpu2 before any version has it.
    worker = Worker(config_loader.parse(yaml.safe_dump(cfg)), ["gpu", "gpu2"])

    async def spawn() -> asyncio.Future:
        return asyncio.ensure_future(worker.run())

    async def result(of: asyncio.Future) -> int:
        return await of
    running = loop.run(spawn())
    try:
        on_version(loop, store, "gpu", 1)
        first = video(client, "local-video")
        assert len(gateway_log.loads()) == 1

        # Default steps: the next job takes them; the weights stay.
        version = edit(gw, lambda doc: provider_in(doc, "gpu").update(steps=3))
        on_version(loop, store, "gpu", version)
        second = video(client, "local-video")
        assert second == reference(pipelines["ltx"], 3) != first
        assert len(gateway_log.loads()) == 1
        assert any(line.startswith(f"config version {version} applied") for line in gateway_log.lines)

        # Another pipeline: loaded before the next job, which runs on it.
        version = edit(gw, lambda doc: provider_in(doc, "gpu").update(pipeline=str(pipelines["wan"])))
        on_version(loop, store, "gpu", version)
        assert [line.split(" from ")[0] for line in gateway_log.loads()] == ["loaded ltx pipeline",
                                                                              "loaded wan pipeline"]
        assert video(client, "local-video") == reference(pipelines["wan"], 3)
        assert len(gateway_log.loads()) == 2

        # A provider it was started for, added: loaded, then served; one it was not started for is not.
        def add(doc: dict) -> None:
            doc["providers"] += [local("gpu2", pipelines["ltx"]), local("gpu3", pipelines["ltx"])]
            doc["models"].append(model("second-video", "gpu2"))
        version = edit(gw, add)
        on_version(loop, store, "gpu2", version)
        assert decode_mp4(video(client, "second-video")).frames == 9
        shown = gw.http(key=ADMIN).get("/admin/workers").json()["providers"]
        assert [w["config_version"] for w in shown["gpu2"]["workers"]] == [version]
        assert shown["gpu3"]["workers"] == []
        assert len(gateway_log.loads()) == 3

        # Disabled: it drains; the worker goes on serving gpu.
        version = edit(gw, lambda doc: provider_in(doc, "gpu2").update(enabled=False), confirm=True)
        on_version(loop, store, "gpu", version)
        deadline = time.time() + 10
        while loop.run(store.workers.live("gpu2")):
            assert time.time() < deadline, "gpu2 still has a live worker"
            time.sleep(0.05)
        assert not running.done()
        assert decode_mp4(video(client, "local-video")).frames == 9

        # A pipeline that does not load: the provider keeps the version it runs, and serves on.
        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "model_index.json").write_bytes((pipelines["wan"] / "model_index.json").read_bytes())
        kept = on_version(loop, store, "gpu", version)["config_version"]
        edit(gw, lambda doc: provider_in(doc, "gpu").update(pipeline=str(broken), steps=2))
        deadline = time.time() + 10
        while f"provider 'gpu' keeps config version {kept}'s pipeline" not in gateway_log.lines:
            assert time.time() < deadline, gateway_log.lines[-5:]
            time.sleep(0.05)
        assert on_version(loop, store, "gpu", kept)
        assert video(client, "local-video") == reference(pipelines["wan"], 3)
    finally:
        worker.stop("test over")
        assert loop.run(result(running)) == 0


# -- on Redis: a `gateway worker` process --------------------------------------------

def test_a_removed_provider_drains_and_the_worker_exits(start_gateway, redis_url, tmp_path, pipelines, loop):
    cfg = video_config([local("gpu", pipelines["ltx"]), local("gpu-slow", pipelines["ltx"], steps=150)],
                       [model("local-video", "gpu"), model("slow-video", "gpu-slow")])
    cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
    cfg["auth"]["admin_key"] = ADMIN
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw = start_gateway(cfg)
    store, client = gw.runtime.store, gw.client()
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "worker", "--config", str(path),
                                 "--provider", "gpu-slow"], cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        on_version(loop, store, "gpu-slow", 1, timeout=60)
        version = edit(gw, lambda doc: provider_in(doc, "gpu-slow").update(steps=200))
        on_version(loop, store, "gpu-slow", version)     # heard at once, through pub/sub

        job = client.videos.create(model="slow-video", prompt="a long one", size="64x32", seconds="1")
        deadline = time.time() + 30
        while (seen := client.videos.retrieve(job.id)).progress < 2:
            assert seen.status in ("queued", "in_progress") and time.time() < deadline
            time.sleep(0.02)

        def remove(doc: dict) -> None:
            doc["providers"] = [p for p in doc["providers"] if p["name"] != "gpu-slow"]
            doc["models"] = [m for m in doc["models"] if m["name"] != "slow-video"]
        removed = edit(gw, remove, confirm=True)
        assert proc.wait(30) == 0
        done = client.videos.retrieve(job.id)
        assert done.status == "completed", done.error
        assert decode_mp4(client.videos.download_content(job.id).read()).frames == 9
        assert loop.run(store.workers.live("gpu-slow")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = log_path.read_text()
    assert lines.count("loaded ltx pipeline") == 1, lines
    assert f"config version {version} applied" in lines
    assert (f"provider 'gpu-slow' is not in config version {removed} (removed or disabled): draining: "
            "no new jobs, 1 in progress finishing") in lines
    assert f"exiting: config version {removed} leaves this worker nothing to serve" in lines
