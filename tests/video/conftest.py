"""What the /v1/videos tests share: a gateway config with a fast mock video
model, a webhook receiver on loopback, and helpers to decode what comes back."""
from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import av
import pytest
from aiohttp import web

from gateway.webhooks.signing import new_secret
from tests.harness import Loop, base_config, closed_after, free_port

SECRET = new_secret()
SIZES = ["320x180", "180x320", "640x360"]
_LOCAL_EXTRA = ("needs the `local` extra, not installed: pip install torch (its CPU or CUDA build), "
                "then pip install -e '.[local]'")


def require_local_extra() -> None:
    """Skip the calling test module unless torch and diffusers are installed (CI installs both)."""
    for name in ("torch", "diffusers"):
        pytest.importorskip(name, reason=f"{_LOCAL_EXTRA} ({name} is missing)")


def mock_video(name: str = "mock", **options: Any) -> dict[str, Any]:
    """A mock provider that renders small, short videos quickly."""
    return {"name": name, "type": "mock", "video_sizes": SIZES, "video_seconds": [1, 2, 4], "video_fps": 4,
            **options}


def video_model(name: str, *providers: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "video",
            "route": {"strategy": "fallback", "targets": [{"provider": p} for p in providers]}, **kw}


def video_config(providers: list[dict] | None = None, models: list[dict] | None = None, **extra: Any) -> dict:
    cfg = base_config(providers or [mock_video()], models or [video_model("mock-video", "mock")], **extra)
    cfg.setdefault("videos", {}).setdefault("poll_after_ms", 50)
    cfg["videos"].setdefault("job_lease_s", 2)
    cfg.setdefault("webhooks", {}).setdefault("secret", SECRET)
    cfg["webhooks"].setdefault("allow_hosts", ["127.0.0.1"])
    return cfg


@dataclass
class Decoded:
    frames: int
    width: int
    height: int
    seconds: float
    codec: str


def decode_mp4(data: bytes) -> Decoded:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
        return Decoded(frames, stream.codec_context.width, stream.codec_context.height, seconds,
                       stream.codec_context.name)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float = 0.0          # time.monotonic() when it arrived


@dataclass
class Receiver:
    """A webhook endpoint on loopback: answers `fail_first` requests with 500, then
    200, each after `delay_s` (a slow receiver)."""
    loop: Loop
    fail_first: int = 0
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._runner: web.AppRunner | None = None
        self.loop.run(self._start())

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._hook)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)   # not 60 s for a slow answer
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(Received(await request.read(), dict(request.headers), time.monotonic()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if len(self.received) <= self.fail_first:
            return web.Response(status=500, text="receiver down")
        return web.Response(status=200, text="ok")

    def close(self) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())


@pytest.fixture
def receiver(loop):
    """receiver(fail_first=0) -> a running webhook Receiver, closed after the test."""
    with closed_after(partial(Receiver, loop)) as make:
        yield make


@pytest.fixture(params=["fal", "openai", "replicate", "runway", "veo"])
def hosted(request, loop):
    """(the provider's test settings, its loopback fake), for each hosted video provider
    (tests/video/test_hosted_providers.py PROVIDERS)."""
    from tests.video.test_hosted_providers import PROVIDERS
    p = PROVIDERS[request.param]
    fake = p.fake(loop)
    yield p, fake
    fake.close()
