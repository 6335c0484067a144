"""The wait for the next request on a kept-alive connection: closed once uvicorn's
`timeout_keep_alive` has gone by with no request (up to a second later: the
connection waits in gateway/http_protocol.py's IdleWheel, checked by the ticker,
not under a timer of its own), never while requests keep coming, and a
connection the client closes leaves nothing waiting. The gateway's own
protocol class under a real uvicorn server, raw sockets."""
from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import weakref
from collections.abc import Iterator

import pytest
import uvicorn

from gateway.http_protocol import DeadlineProtocol, IdleWheel

_REQUEST = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
_KEEP_ALIVE_S = 1


async def _app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Served:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(_app, host="127.0.0.1", port=self.port, http=DeadlineProtocol, lifespan="off",
                                timeout_keep_alive=_KEEP_ALIVE_S, log_level="warning", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.loop = _new_loop()     # uvloop where it is installed, as `gateway serve` runs
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)
        self.thread.start()
        for _ in range(100):
            if self.server.started:
                return
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def waiting(self) -> int:
        """Connections the wheel holds now."""
        return sum(len(filed) for filed in list(IdleWheel.of(self.loop).seconds.values()))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def served() -> Iterator[_Served]:
    s = _Served()
    yield s
    s.stop()


def _answered(sock: socket.socket) -> None:
    sock.sendall(_REQUEST)
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        assert chunk, "closed before the answer"
        got += chunk
    assert got.startswith(b"HTTP/1.1 200")


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        _answered(sock)
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(100) == b""        # closed by the server
        took = time.monotonic() - started
    assert _KEEP_ALIVE_S - 0.1 <= took <= _KEEP_ALIVE_S + 2


def test_a_connection_whose_requests_keep_coming_stays_open(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.settimeout(5)
        ends = time.monotonic() + 3 * _KEEP_ALIVE_S
        answered = 0
        while time.monotonic() < ends:
            _answered(sock)
            answered += 1
            time.sleep(_KEEP_ALIVE_S / 2)
    assert answered >= 5


@pytest.mark.parametrize("how", ["close", "reset"])
def test_connections_the_client_ends_leave_nothing_waiting(served, how):
    socks = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(20)]
    for sock in socks:
        _answered(sock)
    _until(lambda: served.waiting() >= 20)     # filed once each answer has gone, on the server's thread
    for sock in socks:
        if how == "reset":      # an RST, not a FIN: the server sees the connection lost with an error
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    _until(lambda: served.waiting() == 0)      # well before any of them would time out


def _until(ok, within_s: float = 0.5) -> None:
    deadline = time.monotonic() + within_s
    while not ok() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ok()


def test_a_wheel_does_not_keep_its_event_loop():
    loop = asyncio.new_event_loop()
    IdleWheel.of(loop)
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None
