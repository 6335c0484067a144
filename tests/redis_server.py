"""A real `redis-server` for tests: on a free loopback port, in a temp dir, with
no persistence; it can be killed and started again on the same port."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tests.harness import free_port


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (.ci/run installs it)")
        self._binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="gateway-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self._proc is not None

    def kill(self) -> None:
        """Dies at once, as a crashed server would (no clean shutdown)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"FLUSHALL\r\n")
            assert s.recv(64).startswith(b"+OK")

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False
