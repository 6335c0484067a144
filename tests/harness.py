"""Real servers on loopback for tests: the gateway (uvicorn) and fake
upstreams (aiohttp), run on one background event loop so sync tests can talk
to them with the official `openai` SDK and httpx."""
from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import openai
import uvicorn
import yaml

from gateway import config as config_loader
from gateway.app import App
from gateway.runtime import Runtime

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def closed_after(make: Callable[..., T]) -> Iterator[Callable[..., T]]:
    """`make` for a test to call as often as it likes; whatever it made is closed at the end."""
    made: list[Any] = []

    def tracked(*args: Any, **kw: Any) -> T:
        made.append(make(*args, **kw))
        return made[-1]

    try:
        yield tracked
    finally:
        for thing in made:
            thing.close()


class Loop:
    """An event loop on a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _QuickServer(uvicorn.Server):
    """uvicorn's server, quicker to stop. The suite starts and closes about two thousand gateways,
    and uvicorn's own waits (a 0.1 s tick to notice `should_exit`, then a 0.1 s pause for connections
    to close) came to minutes of the suite's time; here both are looked at every 5 ms."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            await asyncio.sleep(0.005)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:  # bounded by Gateway._wait
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class Gateway:
    """A gateway serving `config` on a free loopback port."""

    def __init__(self, loop: Loop, config: dict[str, Any] | str) -> None:
        if not isinstance(config, str):
            # Each gateway keeps its ledger in a directory of its own, never the checkout's ./data.
            state = config.setdefault("state", {})
            state.setdefault("data_dir", tempfile.mkdtemp(prefix="gateway-test-"))
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        self.app = App(config_loader.parse(text))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = loop
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                             access_log=False, http="httptools", loop="none", lifespan="on")
        self.server = _QuickServer(cfg)
        self._task = loop.run(self._start())

    async def _start(self) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return task

    @property
    def runtime(self) -> Runtime:
        """The config version serving now (an edit swaps it)."""
        return self.app.runtime

    def client(self, key: str = "sk-test", **kw: Any) -> openai.OpenAI:
        kw.setdefault("max_retries", 0)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, **kw)

    def http(self, key: str | None = "sk-test") -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def close(self) -> None:
        self.server.should_exit = True
        self._loop.run(self._wait())

    async def _wait(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except TimeoutError:
            # Where it hangs is the whole story of such a failure: every task's stack goes with it.
            stacks = _stacks(asyncio.all_tasks())
            self._task.cancel()
            raise TimeoutError(f"the gateway did not shut down within 10 s; its loop's tasks:\n{stacks}") from None


def _stacks(tasks: set[asyncio.Task]) -> str:
    out = io.StringIO()
    for task in tasks:
        task.print_stack(limit=12, file=out)
    return out.getvalue()


def base_config(providers: list[dict], models: list[dict], **extra: Any) -> dict[str, Any]:
    """A config with one all-models key `sk-test`."""
    cfg: dict[str, Any] = {
        "auth": {"keys": [{"name": "test", "key": "sk-test", "models": ["*"]}]},
        "providers": providers,
        "models": models,
    }
    cfg.update(extra)
    return cfg


def chat_model(name: str, *targets: dict, strategy: str = "fallback", **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "chat", "route": {"strategy": strategy, "targets": list(targets)}, **kw}


async def gather(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))


def serve_config(folder: Path, cfg: dict[str, Any]) -> tuple[subprocess.Popen, int]:
    """`gateway serve` on `cfg` (written to `folder`, its state there too), once /healthz answers."""
    cfg.setdefault("state", {"data_dir": str(folder)})
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = free_port()
    return serve_process(path, port, ready="/healthz"), port


def serve_process(config: Path, port: int, ready: str = "/readyz", **popen: Any) -> subprocess.Popen:
    """`gateway serve` as a process of its own on `port`, once it answers `ready`."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
                            cwd=ROOT, **popen)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}").status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"gateway serve --config {config} did not start")
