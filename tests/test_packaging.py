"""The gateway as a user installs it: the default config and the built-in prices
ship inside the package, and `gateway serve` works from any directory. The slow
test builds the wheel, installs it (not editable) into a fresh venv and serves
from an empty directory, as `pip install .` and the Dockerfile do."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from gateway import config as config_loader
from gateway.config import ConfigError, parse
from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would choose a config or reach the source tree."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "OPENAI_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


# --- the development install (editable) ------------------------------------------

def test_builtin_prices_are_package_data():
    assert Path(str(config_loader.BUILTIN_PRICES)).parent == Path(config_loader.__file__).parent
    assert config_loader.builtin_prices()["openai/gpt-4.1-mini"]["input_per_mtok"] > 0


def test_config_folder_links_to_the_packaged_files():
    """One truth: config/ in the repository shows the packaged files, never a copy kept by hand."""
    for name, packaged in [("gateway.yaml", config_loader.PACKAGED), ("prices.yaml", config_loader.BUILTIN_PRICES)]:
        assert (ROOT / "config" / name).samefile(str(packaged)), name


def test_missing_builtin_prices_are_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(config_loader, "BUILTIN_PRICES", tmp_path / "prices.yaml")
    with pytest.raises(ConfigError) as e:
        parse("providers: [{name: mock, type: mock}]\n", {})
    assert e.value.errors[0].startswith("(built-in prices): cannot read")


def test_config_is_found_in_order(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    assert config_loader.find() == config_loader.Found(str(config_loader.PACKAGED), "the packaged default")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "gateway.yaml").write_text("models: []\n")
    assert config_loader.find().source == "./config/gateway.yaml"
    monkeypatch.setenv("GATEWAY_CONFIG", "/etc/env.yaml")
    assert config_loader.find() == config_loader.Found("/etc/env.yaml", "$GATEWAY_CONFIG")
    assert config_loader.find("my.yaml") == config_loader.Found("my.yaml", "--config")


@pytest.mark.parametrize("how", ["--config", "GATEWAY_CONFIG"])
def test_an_unreadable_config_says_how_to_name_one(tmp_path, how):
    args, env = ["--config", "/nonexistent.yaml"], clean_env()
    if how == "GATEWAY_CONFIG":
        args, env = [], clean_env(GATEWAY_CONFIG="/nonexistent.yaml")
    r = subprocess.run([sys.executable, "-m", "gateway", "check", *args], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "cannot read /nonexistent.yaml" in r.stdout
    assert "--config" in r.stdout and "GATEWAY_CONFIG" in r.stdout


def test_check_from_an_empty_directory_uses_the_packaged_default(tmp_path):
    r = subprocess.run([sys.executable, "-m", "gateway", "check"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    path = r.stdout.split(": OK:")[0]
    assert os.path.isabs(path) and path.endswith(os.path.join("gateway", "config", "gateway.yaml")), r.stdout


# --- the wheel, installed into a fresh venv -----------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ of a fresh venv holding the wheel built from this tree (its dependencies from pip's cache or index)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy of what the Dockerfile copies, so the build writes nothing into the tree.
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("gateway", "providers"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # No build isolation: the build needs nothing from the network (setuptools is a test dependency).
    _run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src))
    (wheel,) = (tmp / "dist").glob("gateway-*.whl")
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))     # this pip installs into it: faster
    _run(*pip, "--python", str(venv / "bin" / "python"), "install", "-q", str(wheel))
    return venv / "bin"


def _run(*args: str) -> None:
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{' '.join(args)}\n{r.stdout}{r.stderr}"


@pytest.mark.slow
@pytest.mark.timeout(600)     # the first one builds and installs (dependencies may come from the index)
def test_installed_wheel_checks_its_packaged_default(installed, tmp_path):
    r = subprocess.run([str(installed / "gateway"), "check"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    path = r.stdout.split(": OK:")[0]
    assert "site-packages" in path and path.startswith(str(installed.parent)), r.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_installed_wheel_serves_priced_chat_and_video_links_from_an_empty_directory(installed, tmp_path,
                                                                                     fake_openai):
    upstream = fake_openai()
    port = free_port()
    log = tmp_path / "serve.log"
    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = clean_env(OPENAI_API_KEY="sk-upstream", OPENAI_BASE_URL=upstream.url)
    with log.open("wb") as out:
        proc = subprocess.Popen([str(installed / "gateway"), "serve", "--port", str(port)], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, proc, log)
        assert "(the packaged default)" in log.read_text()

        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0)
        chat = client.chat.completions.with_raw_response.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hello"}])
        assert chat.headers["x-gateway-provider"] == "openai"
        assert float(chat.headers["x-gateway-cost-usd"]) > 0       # the built-in prices were found
        assert len(upstream.seen) == 1

        # A video link names the host the client called (no public_url, as in a container).
        headers = {"Host": "gw.example:1234", "Authorization": "Bearer sk-demo"}
        with httpx.Client(base_url=base, headers=headers) as called:
            video = called.post("/v1/videos", json={"model": "mock-video", "prompt": "x", "size": "854x480",
                                                     "seconds": "2"}).json()
            deadline = time.time() + 60
            while video.get("status") in ("queued", "in_progress") and time.time() < deadline:
                time.sleep(0.1)
                video = called.get(f"/v1/videos/{video['id']}").json()
        assert video["status"] == "completed", video
        assert video["video_url"].startswith(f"http://gw.example:1234/v1/videos/{video['id']}/content?")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "Traceback" not in log.read_text()


def _wait_ready(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 30
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(base + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the installed gateway did not start:\n{log.read_text()}")
