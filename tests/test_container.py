"""The container image, built from this repository's Dockerfile and run.

No Docker daemon and no registry: podman builds the Dockerfile on a Debian bookworm root filesystem
that mmdebstrap makes (`--build-arg BASE=...`, kept in podman's store for the day), and the built
image's filesystem is run with chroot as the image records it: its user, working directory,
environment and command. The SDK then talks to it over loopback. What this does not prove (cgroup
limits, namespaces, an engine's HEALTHCHECK runs) is listed in docs/container.md."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.harness import free_port
from tests.video.conftest import decode_mp4

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "localhost/gateway-test:latest"
CONTAINER = "gateway-test"
BASE_REPO = "localhost/gateway-test-base"
USER = "10001:10001"
# Measured at 395 MB on the bookworm base below (about 130 MB of it the base, the rest the venv:
# PyAV with its FFmpeg ~105 MB, numpy ~75 MB); the margin is for dependencies' new releases.
MAX_IMAGE_BYTES = 450_000_000
_INSTALL = "Debian: apt-get install podman mmdebstrap (.ci/run does)"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),           # the first test builds the base and the image (about 1 min here)
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),   # client.videos is marked deprecated
]


@dataclass
class Image:
    ref: str
    config: dict[str, Any]    # the image's Config as `podman image inspect` reads it: User, Env, Cmd, ...
    healthcheck: dict[str, Any]
    size: int                 # bytes, as podman counts them


class Podman:
    """podman, with a config of the test's own in CONTAINERS_CONF."""

    def __init__(self, conf: Path) -> None:
        # No ulimits of podman's choosing for what the build runs, only those it inherits: raising a limit
        # above the hard limit it runs under is refused in a sandbox without CAP_SYS_RESOURCE.
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        r = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r.stdout.strip()


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> Podman:
    missing = [tool for tool in ("podman", "mmdebstrap", "unshare", "chroot", "mount") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH: {_INSTALL}")
    if os.geteuid() != 0:
        pytest.skip("needs root: mmdebstrap, mounting the image's filesystem and chroot into it")
    tool = Podman(tmp_path_factory.mktemp("podman") / "containers.conf")
    r = subprocess.run(["podman", "info"], env=tool.env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.skip(f"podman cannot run here: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return tool


@pytest.fixture(scope="module")
def base_image(podman: Podman, tmp_path_factory) -> str:
    """A Debian bookworm root filesystem with python3 and its venv module, made once a day.

    The day is in the tag, so security updates arrive by the next day without a rebuild on every run."""
    ref = f"{BASE_REPO}:bookworm-{datetime.now(UTC):%Y%m%d}"
    if _exists(podman, ref):
        return ref
    tar = tmp_path_factory.mktemp("base") / "base.tar"
    started = time.monotonic()
    r = subprocess.run(
        ["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
         # merged /usr without the usrmerge package, which would pull perl in (about 50 MB)
         "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
         # as Debian's own slim images: no docs, man pages or translations
         "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
         "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
         "--dpkgopt=path-exclude=/usr/share/locale/*",
         "bookworm", str(tar),
         # Named, not read from stdin (mmdebstrap reads sources there when it is not a terminal).
         "deb http://deb.debian.org/debian bookworm main",
         "deb http://deb.debian.org/debian bookworm-updates main",
         "deb http://deb.debian.org/debian-security bookworm-security main"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"mmdebstrap failed:\n{r.stdout}{r.stderr[-4000:]}"
    podman("import", "--quiet", str(tar), ref)
    tar.unlink()
    print(f"base image {ref}: made in {time.monotonic() - started:.0f} s")
    for old in podman("images", "--filter", f"reference={BASE_REPO}", "--format", "{{.Repository}}:{{.Tag}}")\
            .splitlines():
        if old != ref:
            podman("rmi", old, check=False)       # yesterday's base; refused while an image still uses it
    return ref


def _exists(podman: Podman, ref: str) -> bool:
    return subprocess.run(["podman", "image", "exists", ref], env=podman.env, timeout=60).returncode == 0


def _pip_ca() -> str | None:
    """The CA bundle this machine's pip is told to trust (a proxy that re-signs TLS), for the build's pip."""
    for name in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        if (path := os.environ.get(name)) and os.path.isfile(path):
            return path
    return None


@pytest.fixture(scope="module")
def image(podman: Podman, base_image: str, tmp_path_factory) -> Image:
    previous = podman("images", "--quiet", "--no-trunc", IMAGE, check=False)
    args = ["build", "--isolation", "chroot",
            "--format", "docker",          # the OCI format has no HEALTHCHECK
            "--layers=false", "--force-rm",  # nothing kept between runs but the base and the last image
            "--build-arg", f"BASE={base_image}", "--tag", IMAGE]
    if ca := _pip_ca():
        args += ["--secret", f"id=pip-ca,src={ca}"]
    log = tmp_path_factory.mktemp("build") / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        r = subprocess.run(["podman", *args, str(ROOT)], env=podman.env, stdout=out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=600)
    assert r.returncode == 0, f"podman build failed:\n{log.read_text()[-6000:]}"
    print(f"image built in {time.monotonic() - started:.0f} s")
    (inspected,) = json.loads(podman("image", "inspect", IMAGE))
    if previous and previous != inspected["Id"]:
        podman("rmi", previous, check=False)     # the last run's image: only the newest is kept
    healthcheck = inspected.get("Healthcheck") or inspected["Config"].get("Healthcheck") or {}
    return Image(IMAGE, inspected["Config"], healthcheck, int(inspected["Size"]))


@pytest.fixture(scope="module")
def rootfs(podman: Podman, image: Image) -> Iterator[Path]:
    """The image's filesystem under a container's writable layer, as an engine would start it."""
    podman("rm", "--force", "--ignore", CONTAINER)        # one left mounted by a run that was killed
    container = podman("create", "--name", CONTAINER, "--no-healthcheck", image.ref)
    try:
        yield Path(podman("mount", container))
    finally:
        podman("umount", container, check=False)
        podman("rm", "--force", container, check=False)


def _enter(rootfs: Path, image: Image, command: list[str]) -> list[str]:
    """`command` in the image's filesystem as its user, from its working directory.

    In a mount namespace of its own, so the /dev and /proc mounts an engine would give go when it exits;
    chroot switches to the image's user (and its group alone); the image's own `env` changes directory."""
    script = ('root=$1 workdir=$2 && shift 2 && mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc"'
              f' && exec chroot --userspec={image.config["User"]} "$root" env --chdir="$workdir" "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
            "sh", str(rootfs), image.config.get("WorkingDir") or "/", *command]


def _image_env(rootfs: Path, image: Image) -> dict[str, str]:
    """The image's Env, and HOME from its user's passwd entry, as an engine sets it."""
    env = dict(line.split("=", 1) for line in image.config.get("Env", []))
    uid = image.config["User"].split(":")[0]
    for entry in (rootfs / "etc" / "passwd").read_text().splitlines():
        fields = entry.split(":")
        if fields[2] == uid:
            env.setdefault("HOME", fields[5])
    return env


@dataclass
class Served:
    base: str
    port: int
    proc: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def served(rootfs: Path, image: Image, tmp_path_factory) -> Iterator[Served]:
    """The image's command, on a free port instead of 8080 so it cannot meet another server on this machine."""
    port = free_port()
    command = list(image.config["Cmd"])
    command[command.index("--port") + 1] = str(port)
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(_enter(rootfs, image, command), env=_image_env(rootfs, image),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None and time.time() < deadline, f"the image did not start:\n{log.read_text()}"
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield Served(base, port, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


# --- the image as built ---------------------------------------------------------------------------------

def test_the_image_records_its_user_port_command_and_healthcheck(image: Image):
    assert image.config["User"] == USER
    assert image.config["WorkingDir"] == "/app"
    assert image.config["Cmd"] == ["gateway", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "8080/tcp" in image.config["ExposedPorts"]
    env = dict(line.split("=", 1) for line in image.config["Env"])
    assert env["GATEWAY_DATA_DIR"] == "/app/data"
    assert env["PATH"].startswith("/opt/gateway/bin:")
    assert "GATEWAY_CONFIG" not in env                  # so the packaged default runs unless one is mounted
    assert "/healthz" in " ".join(image.healthcheck["Test"])


def test_the_image_holds_the_runtime_only(image: Image, rootfs: Path):
    print(f"image size: {image.size / 1e6:.0f} MB")
    assert image.size < MAX_IMAGE_BYTES, f"{image.size / 1e6:.0f} MB"
    path = dict(line.split("=", 1) for line in image.config["Env"])["PATH"].split(":")
    compilers = [f"{d}/{name}" for d in path for name in ("gcc", "cc", "c++", "g++", "clang", "x86_64-linux-gnu-gcc")
                 if (rootfs / d.lstrip("/") / name).exists()]
    assert compilers == []
    assert not list(rootfs.glob("usr/lib/gcc/*/*/cc1")), "a compiler's back end"
    caches = [cache for home in ("root", "app", "tmp") for cache in (rootfs / home).rglob(".cache")]
    assert caches == []                                                   # no pip cache, nor any other
    site = next(rootfs.glob("opt/gateway/lib/python3*/site-packages"))
    assert (site / "gateway" / "config" / "gateway.yaml").is_file()      # the packaged default config
    assert not (site / "pip").exists() and not (site / "setuptools").exists()     # nothing installs at run time
    assert not (site / "torch").exists()                                  # the `local` extra stays out
    assert not (rootfs / "src").exists()                                  # the build stage's sources
    assert sorted(p.name for p in (rootfs / "app").iterdir()) == ["data"]
    assert (rootfs / "app" / "data").stat().st_uid == 10001


# --- the image run ---------------------------------------------------------------------------------------

def test_the_image_serves_chat_and_video_as_its_user(served: Served, rootfs: Path):
    ready = httpx.get(served.base + "/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert "(the packaged default)" in served.log.read_text()

    status = dict(line.split(":", 1) for line in Path(f"/proc/{served.proc.pid}/status").read_text().splitlines())
    assert status["Uid"].split() == ["10001"] * 4 and status["Gid"].split() == ["10001"] * 4
    assert Path(f"/proc/{served.proc.pid}/cwd").resolve() == (rootfs / "app").resolve()

    client = openai.OpenAI(base_url=served.base + "/v1", api_key="sk-demo", max_retries=0)
    chat = client.chat.completions.with_raw_response.create(
        model="mock-chat", messages=[{"role": "user", "content": "hello from outside the image"}])
    assert chat.headers["x-gateway-provider"] == "mock"
    assert chat.parse().choices[0].message.content

    video = client.videos.create_and_poll(model="mock-video", prompt="a lighthouse at dusk", size="854x480",
                                          seconds="2", poll_interval_ms=100)
    assert video.status == "completed", video
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height) == (854, 480)
    assert decoded.seconds == pytest.approx(2.0, abs=0.01)

    # The state went to GATEWAY_DATA_DIR, written by the image's user.
    data = rootfs / "app" / "data"
    written = [p for p in data.rglob("*") if p.is_file()]
    assert written and {p.stat().st_uid for p in written} == {10001}


def test_the_healthcheck_passes_in_the_image(served: Served, rootfs: Path, image: Image):
    kind, test = image.healthcheck["Test"]
    assert kind == "CMD-SHELL" and "127.0.0.1:8080" in test

    def check(port: int) -> subprocess.CompletedProcess:
        command = ["sh", "-c", test.replace("127.0.0.1:8080", f"127.0.0.1:{port}")]
        return subprocess.run(_enter(rootfs, image, command), env=_image_env(rootfs, image), capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)

    # The port the server was given in place of the image's 8080 (see `served`), and one nobody serves.
    healthy = check(served.port)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert check(free_port()).returncode == 1
