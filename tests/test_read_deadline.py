"""A request must arrive whole within `server.read_timeout_s`: a client that
trickles its headers gets a 408 and the connection closes; one that declares
a body and sends part of it has its connection closed; neither holds the
gateway up for anyone else. Real `gateway serve` processes, raw sockets."""
from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.harness import base_config, chat_model, serve_config

_MSG = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deadline")
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("m", {"provider": "mock"})])
    cfg["server"] = {"read_timeout_s": 1}
    proc, port = serve_config(folder, cfg)
    yield port
    proc.terminate()
    proc.wait(10)


def _read_all(sock: socket.socket, within_s: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and how long that took."""
    sock.settimeout(within_s)
    started = time.monotonic()
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return got, time.monotonic() - started
        got += chunk


@pytest.mark.parametrize("sent", [
    b"",                                                    # connected, said nothing
    b"POST /v1/chat/completions HTTP/1.1\r\n",              # a request line, then silence
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-te",   # headers trickling
])
def test_an_incomplete_head_gets_a_408_and_the_connection_closes(gateway, sent):
    with socket.create_connection(("127.0.0.1", gateway)) as sock:
        sock.sendall(sent)
        got, took = _read_all(sock, 5)
    assert took < 3
    assert got.startswith(b"HTTP/1.1 408") and b'"code":"request_timeout"' in got


@pytest.mark.parametrize("declared, sent", [(10, 2), (len(_MSG), len(_MSG) - 1), (1_000_000, 50_000)])
def test_a_body_short_of_its_length_has_its_connection_closed(gateway, declared, sent):
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-test\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % declared)
    with socket.create_connection(("127.0.0.1", gateway)) as sock:
        sock.sendall(head + (_MSG * (sent // len(_MSG) + 1))[:sent])
        _, took = _read_all(sock, 5)
    assert took < 3


def test_slow_clients_do_not_hold_up_others(gateway):
    held = [socket.create_connection(("127.0.0.1", gateway)) for _ in range(20)]
    try:
        for sock in held:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
        started = time.monotonic()
        r = httpx.post(f"http://127.0.0.1:{gateway}/v1/chat/completions", content=_MSG,
                       headers={"authorization": "Bearer sk-test", "content-type": "application/json"})
        assert r.status_code == 200 and time.monotonic() - started < 0.5
        assert httpx.get(f"http://127.0.0.1:{gateway}/healthz").status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_a_prompt_request_on_a_kept_alive_connection_is_not_cut(gateway):
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway}", headers={"authorization": "Bearer sk-test"}) as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions", content=_MSG,
                             headers={"content-type": "application/json"}).status_code == 200
            time.sleep(0.6)       # idle between requests is the keep-alive timeout's business, not this one's
