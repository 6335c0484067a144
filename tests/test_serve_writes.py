"""What `gateway serve` writes to a connection: one turn of the loop's writes go
out together (an answer's head and body in one write), and yet every answer is
whole and in order on a kept-alive or pipelined connection, and a stream whose
chunks come over time reaches the client chunk by chunk, not at its end. Real
`gateway serve` processes, raw sockets."""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from tests.harness import base_config, chat_model, serve_config

_HEAD = b"authorization: Bearer sk-test\r\ncontent-type: application/json\r\n"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("writes")
    cfg = base_config([{"name": "mock", "type": "mock"},
                       {"name": "slow", "type": "mock", "chunk_delay_ms": 150}],
                      [chat_model("m", {"provider": "mock"}), chat_model("slow", {"provider": "slow"})])
    proc, port = serve_config(folder, cfg)
    yield port
    proc.terminate()
    proc.wait(10)


def _body(model: str = "m", stream: bool = False, words: int = 8) -> bytes:
    return json.dumps({"model": model, "stream": stream, "max_tokens": words,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()


def test_answers_whole_and_streamed_stay_whole_and_in_order_on_one_connection(gateway):
    conn = http.client.HTTPConnection("127.0.0.1", gateway, timeout=10)
    try:
        for i in range(30):
            stream = i % 2 == 1
            conn.request("POST", "/v1/chat/completions", body=_body(stream=stream, words=5 + i),
                         headers={"authorization": "Bearer sk-test", "content-type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200
            if stream:
                events = [line[6:] for line in data.split(b"\n") if line.startswith(b"data: ")]
                assert events[-1] == b"[DONE]"
                assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])
            else:
                assert json.loads(data)["object"] == "chat.completion"
                assert int(r.headers["content-length"]) == len(data)
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(gateway):
    requests = b"".join(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n" + _HEAD
        + b"content-length: %d\r\n\r\n%b" % (len(body), body)
        for body in (_body(words=3), _body(stream=True, words=4), _body(words=5)))
    with socket.create_connection(("127.0.0.1", gateway)) as sock:
        sock.sendall(requests)
        sock.settimeout(1.5)        # all three are answered long before the connection goes quiet
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except TimeoutError:
            pass
    first, second, third = got.index(b"HTTP/1.1 200"), got.index(b"HTTP/1.1 200", 1), got.rindex(b"HTTP/1.1 200")
    assert first < second < third
    assert b"text/event-stream" in got[second:third] and b"data: [DONE]" in got[second:third]
    assert b"text/event-stream" not in got[third:]
    head, body = got[third:].split(b"\r\n\r\n", 1)
    assert json.loads(body)["usage"]["completion_tokens"] == 5


def test_a_stream_reaches_the_client_as_its_chunks_come(gateway):
    conn = http.client.HTTPConnection("127.0.0.1", gateway, timeout=10)
    try:
        started = time.monotonic()
        conn.request("POST", "/v1/chat/completions", body=_body("slow", stream=True, words=6),
                     headers={"authorization": "Bearer sk-test", "content-type": "application/json"})
        r = conn.getresponse()
        arrivals = []
        while True:
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                arrivals.append(time.monotonic() - started)
                if line.startswith(b"data: [DONE]"):
                    break
    finally:
        conn.close()
    assert len(arrivals) >= 5
    assert arrivals[-1] - arrivals[0] > 0.5         # spread over the stream, as the chunks came
    assert arrivals[1] < arrivals[-1] - 0.3


def test_a_complete_answer_goes_out_at_once_and_only_once():
    """The writes of a turn are joined; an answer's end sends them at once (the request's
    own end work runs after), and the turn's scheduled write then has nothing left."""
    import asyncio

    from gateway.http_protocol import TurnWrites

    class Transport:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.sent.append(data)

        def is_closing(self) -> bool:
            return False

    async def main() -> list[bytes]:
        transport = Transport()
        writes = TurnWrites(transport, asyncio.get_running_loop())   # type: ignore[arg-type]
        writes.write(b"head ")
        writes.write(b"body")
        assert transport.sent == []
        writes.flush()                      # what on_response_complete does
        assert transport.sent == [b"head body"]
        await asyncio.sleep(0)              # the turn's own flush: nothing pending
        writes.write(b"next")
        await asyncio.sleep(0)
        return transport.sent

    assert asyncio.run(main()) == [b"head body", b"next"]
