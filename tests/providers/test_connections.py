"""providers/connections.py: the upstream client's pool and answers, against
real loopback servers that answer byte by byte as each test scripts them
(well-behaved HTTP/1.1, and the ways servers go wrong)."""
from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable

import pytest

from providers import trace
from providers.connections import Broken, ConnectFailed, Pool, StreamedBody
from providers.ticker import Ticker

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running `script` for each connection; counts connections
    and keeps each request's head."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.heads: list[bytes] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                await reader.readexactly(int(line.split(b":")[1]))
        return head


def answer(body: bytes, *headers: bytes, status: bytes = b"200 OK") -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def keep_answering(server_of: Callable[[], Server], body: bytes = b'{"ok":true}') -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await server_of().read_request(reader)
            writer.write(answer(body))
            await writer.drain()
    return script


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))   # type: ignore[arg-type]


async def get_body(pool: Pool, url: str, body: bytes = b"{}", headers: dict[str, str] | None = None,
                   method: str = "POST", idle_timeout_s: float | None = 5) -> tuple[int, bytes]:
    a = await pool.request(method, url, headers or {"content-type": "application/json"}, body, idle_timeout_s)
    return a.status, await a.read()


def test_one_connection_serves_request_after_request():
    async def go() -> None:
        server: Server
        async with Server(keep_answering(lambda: server)) as server:
            pool = Pool()
            for _ in range(20):
                assert await get_body(pool, server.url) == (200, b'{"ok":true}')
            assert server.connections == 1
            head = server.heads[0].decode()
            assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
            assert f"host: 127.0.0.1:{server.port}\r\n" in head and "content-length: 2\r\n" in head
            assert "accept-encoding" not in head.lower()      # answers come uncompressed
            await pool.close()
    run(go())


def test_never_more_connections_than_the_limit():
    async def go() -> None:
        open_now = most = 0

        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal open_now, most
            open_now += 1
            most = max(most, open_now)
            try:
                while True:
                    await server.read_request(reader)
                    await asyncio.sleep(0.01)
                    writer.write(answer(b"{}"))
                    await writer.drain()
            finally:
                open_now -= 1

        async with Server(slow) as server:
            pool = Pool(max_connections=3)
            results = await asyncio.gather(*(get_body(pool, server.url) for _ in range(30)))
            assert all(r == (200, b"{}") for r in results)
            assert most == 3 and server.connections == 3
            await pool.close()
    run(go())


def test_a_kept_alive_connection_the_server_closed_is_replaced_without_failing_the_request():
    async def go() -> None:
        async def once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(answer(b"{}"))      # keep-alive by HTTP/1.1's default...
            await writer.drain()
            # ...then closed at once, as a server's idle timeout does

        async with Server(once_then_close) as server:
            pool = Pool()
            assert await get_body(pool, server.url) == (200, b"{}")
            await asyncio.sleep(0.05)
            assert await get_body(pool, server.url) == (200, b"{}")
            # and when the close races the next request (no FIN seen yet), the request is sent again
            assert await get_body(pool, server.url) == (200, b"{}")
            assert server.connections == 3
            await pool.close()
    run(go())


@pytest.mark.parametrize("cut_after", [b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\"",
                                       b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n",
                                       b"HTTP/1.1 200 OK\r\ncontent-le"])
def test_an_answer_cut_off_fails_and_is_not_sent_again(cut_after):
    async def go() -> None:
        async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(cut_after)
            await writer.drain()

        async with Server(cut) as server:
            pool = Pool()
            with pytest.raises(Broken):
                await get_body(pool, server.url)
            assert server.connections == 1       # bytes of an answer came: never repeated
            await pool.close()
    run(go())


def test_bodies_without_a_length_chunked_and_compressed():
    async def go() -> None:
        text = b'{"answer":"' + b"x" * 5000 + b'"}'
        answers = [
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + text,      # ends with the connection
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (text[:100], text[100:])) + b"0\r\n\r\n",
            answer(gzip.compress(text), b"content-encoding: gzip"),
            answer(zlib.compress(text), b"content-encoding: deflate"),
        ]

        async def each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(answers[server.connections - 1])
            await writer.drain()

        async with Server(each) as server:
            pool = Pool()
            for _ in answers:
                assert await get_body(pool, server.url) == (200, text)
            await pool.close()
    run(go())


def test_an_encoding_not_asked_for_and_garbage_are_broken_answers():
    async def go() -> None:
        bad = [answer(b"\x00\x01", b"content-encoding: br"),
               answer(b"not gzip at all", b"content-encoding: gzip"),
               b"SMTP ready\r\n\r\n",
               b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"]

        async def each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(bad[server.connections - 1])
            await writer.drain()
            await asyncio.sleep(0.2)

        async with Server(each) as server:
            pool = Pool()
            for _ in bad:
                with pytest.raises(Broken):
                    await get_body(pool, server.url)
            await pool.close()
    run(go())


def test_an_interim_100_continue_is_skipped_and_head_needs_no_body():
    async def go() -> None:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await server.read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b'{"a":1}'))
            await writer.drain()
            head = await server.read_request(reader)
            assert head.startswith(b"HEAD ")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")   # a HEAD answer: no body follows
            await writer.drain()
            await asyncio.sleep(0.5)

        async with Server(script) as server:
            pool = Pool()
            assert await get_body(pool, server.url) == (200, b'{"a":1}')
            a = await pool.request("HEAD", server.url, {}, b"", 5)
            assert a.status == 200 and a.content_length == 1000 and await a.read() == b""
            assert b"content-length" not in server.heads[-1].lower()     # HEAD with no body: no length sent
            await pool.close()
    run(go())


def test_a_silent_upstream_times_out_from_its_last_byte():
    async def go() -> None:
        async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for _ in range(4):              # a byte every 0.1 s keeps it alive past the 0.3 s timeout...
                await asyncio.sleep(0.1)
                writer.write(b"1\r\nx\r\n")
                await writer.drain()
            await asyncio.sleep(5)          # ...then silence

        async with Server(stall) as server:
            pool = Pool()
            a = await pool.request("POST", server.url, {}, b"{}", 0.3)
            got = b""
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                async for piece in a.content.iter_any():
                    got += piece
            assert got == b"xxxx" and 0.6 < loop.time() - started < 2
            await pool.close()
    run(go())


def test_an_upstream_silent_before_its_head_times_out_and_no_exchange_stays_watched():
    """The idle timeout is checked by the process's ticker: an exchange joins its set when sent
    and leaves it however it ends (answered, timed out, cancelled, failed)."""
    async def go() -> None:
        async def some_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                request = await server.read_request(reader)
                if b"x-do: silent" in request:
                    await asyncio.sleep(5)
                    return
                if b"x-do: cut" in request:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                    await writer.drain()
                    writer.close()
                    return
                writer.write(answer(b'{"ok":true}'))
                await writer.drain()

        async with Server(some_answer) as server:
            pool = Pool()
            watched = Ticker.of(asyncio.get_running_loop()).checked
            for _ in range(20):
                assert (await get_body(pool, server.url))[0] == 200
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError):
                await get_body(pool, server.url, headers={"x-do": "silent"}, idle_timeout_s=0.2)
            assert 0.2 <= loop.time() - started < 1
            with pytest.raises(Broken):
                await get_body(pool, server.url, headers={"x-do": "cut"})
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(get_body(pool, server.url, headers={"x-do": "silent"}), 0.1)
            await asyncio.sleep(0)
            assert not watched
            await pool.close()
    run(go())


def test_letting_go_of_an_answer_midway_closes_its_connection():
    async def go() -> None:
        async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3000000\r\n\r\n")
                for _ in range(30):
                    writer.write(b"y" * 100_000)
                    await writer.drain()

        async with Server(big) as server:
            pool = Pool()
            a = await pool.request("POST", server.url, {}, b"{}", 5)
            assert len(await a.read(10)) == 10
            a.release()
            b = await pool.request("POST", server.url, {}, b"{}", 5)
            total = 0
            async for piece in b.content.iter_chunked(64 * 1024):      # read in pieces, under flow control
                assert len(piece) <= 64 * 1024
                total += len(piece)
            assert total == 3_000_000 and server.connections == 2
            await pool.close()
    run(go())


@pytest.mark.parametrize("headers,url_user", [
    ({"x-api-key": "k\r\nx-injected: 1"}, ""),
    ({"bad\r\nname": "v"}, ""),
    ({"authorization": "Bearer k"}, "user:pass@"),
])
def test_a_header_that_would_split_the_request_or_doubled_credentials_are_refused(headers, url_user):
    async def go() -> None:
        server: Server
        async with Server(keep_answering(lambda: server)) as server:
            pool = Pool()
            with pytest.raises(ValueError):
                await get_body(pool, server.url.replace("://", "://" + url_user), headers=headers)
            assert server.heads == []
            await pool.close()
    run(go())


def test_credentials_in_the_url_go_as_basic_auth_and_the_trace_context_is_not_the_pools_to_add():
    async def go() -> None:
        server: Server
        async with Server(keep_answering(lambda: server)) as server:
            pool = Pool()
            assert (await get_body(pool, server.url.replace("://", "://user:p%40ss@")))[0] == 200
            assert b"authorization: Basic dXNlcjpwQHNz\r\n" in server.heads[0]     # user:p@ss
            token = trace.TRACEPARENT.set("00-" + "a" * 32 + "-" + "b" * 16 + "-01")
            try:
                await get_body(pool, server.url)
            finally:
                trace.TRACEPARENT.reset(token)
            assert b"traceparent" not in server.heads[1]     # Upstream.open adds it, not the pool
            await pool.close()
    run(go())


def test_nothing_listening_is_a_connect_failure():
    async def go() -> None:
        server: Server
        async with Server(keep_answering(lambda: server)) as server:
            url = server.url
        pool = Pool()
        with pytest.raises(ConnectFailed) as e:
            await get_body(pool, url)
        assert e.value.os_error is not None
        await pool.close()
    run(go())


def test_a_cancelled_request_gives_its_connection_up_and_frees_its_slot():
    async def go() -> None:
        async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            await asyncio.sleep(5)

        async with Server(never) as server:
            pool = Pool(max_connections=1)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(get_body(pool, server.url), 0.2)
            with pytest.raises(TimeoutError):       # the slot is free again: a new connection is made
                await asyncio.wait_for(get_body(pool, server.url), 0.2)
            assert server.connections == 2
            await pool.close()
    run(go())


# -- bodies sent in pieces (uploads) -------------------------------------------------

class Pieces:
    """A StreamedBody's maker that counts what it made and says whether it was closed."""

    def __init__(self, length: int, piece: int = 64 * 1024, short_by: int = 0) -> None:
        self.length, self.piece, self.short_by = length, piece, short_by
        self.made = self.sends = 0
        self.closed = False

    def body(self) -> StreamedBody:
        return StreamedBody(self.length, self.pieces)

    async def pieces(self) -> AsyncGenerator[bytes, None]:
        self.sends += 1
        self.made, self.closed = 0, False
        try:
            end = self.length - self.short_by
            while self.made < end:
                piece = bytes([self.made // self.piece % 251]) * min(self.piece, end - self.made)
                self.made += len(piece)
                yield piece
        finally:
            self.closed = True


def test_a_streamed_body_goes_whole_with_its_length_on_a_connection_of_its_own():
    async def go() -> None:
        got: list[bytes] = []

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            server.heads.append(head)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            got.append(await reader.readexactly(length))
            writer.write(answer(b"{}"))
            await writer.drain()
            await reader.read()

        async with Server(script) as server:
            pool = Pool()
            body = Pieces(1_000_000)
            for _ in range(2):
                a = await pool.request_streamed("POST", server.url, {"content-type": "audio/wav"}, body.body(), 5)
                assert (a.status, await a.read()) == (200, b"{}") and body.closed
            made = b"".join([p async for p in Pieces(1_000_000).pieces()])
            assert got == [made, made]
            assert b"content-length: 1000000\r\n" in server.heads[0] and b"transfer-encoding" not in server.heads[0]
            assert server.connections == 2 and pool._open == 0     # each its own, closed after its answer
            await pool.close()
    run(go())


def test_a_streamed_body_is_made_only_as_fast_as_the_server_reads_and_stops_at_an_early_answer():
    async def go() -> None:
        async def refuse_unread(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.5)        # reads nothing of the body meanwhile
            writer.write(answer(b'{"error":"too large"}', status=b"413 Payload Too Large"))
            await writer.drain()
            await asyncio.sleep(0.5)

        async with Server(refuse_unread) as server:
            pool = Pool()
            body = Pieces(1024 * 1024 * 1024)       # 1 GiB, never made whole
            a = await pool.request_streamed("POST", server.url, {}, body.body(), 5)
            assert a.status == 413 and await a.read() == b'{"error":"too large"}'
            assert body.made < 64 * 1024 * 1024     # what the sockets hold, not the body
            await asyncio.sleep(0.05)
            assert body.closed and pool._open == 0
            await pool.close()
    run(go())


def test_a_streamed_body_shorter_than_its_length_breaks_the_request():
    async def go() -> None:
        async def wait_for_it(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        async with Server(wait_for_it) as server:
            pool = Pool()
            with pytest.raises(Broken, match="short of its Content-Length"):
                await pool.request_streamed("POST", server.url, {}, Pieces(100_000, short_by=10).body(), 5)
            assert pool._open == 0
            await pool.close()
    run(go())


def test_a_cancelled_streamed_request_stops_making_its_body_and_frees_its_slot():
    async def go() -> None:
        async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(1024):
                await asyncio.sleep(0.01)

        async with Server(slow_reader) as server:
            pool = Pool(max_connections=1)
            body = Pieces(1024 * 1024 * 1024)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(pool.request_streamed("POST", server.url, {}, body.body(), 5), 0.3)
            await asyncio.sleep(0.05)
            assert body.closed and pool._open == 0
            await pool.close()
    run(go())
