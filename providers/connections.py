"""Upstream connections: one provider's pool of HTTP/1.1 keep-alive connections,
and the answers read from them.

Built on asyncio's protocol layer and httptools (llhttp, the parser uvicorn
serves with) because every request pays for its client: a general client
(aiohttp) spent ~65 µs of CPU a request here on building and reading one
exchange, this one ~10 µs (docs/performance.md, "The upstream client").
What it does not do, on purpose: follow redirects (`Upstream.send` decides
that, per origin), cookies, proxies, or ask for compressed answers (no
Accept-Encoding is sent; gzip or deflate sent anyway is decoded).

A connection goes back to the pool as soon as its answer has arrived whole
(the bytes wait in the answer); one whose answer is given up early is closed.
A request on a reused connection that the server had closed meanwhile (no
byte of an answer came back) is sent once more on a new connection.

A body too large to hold (an upload read back from its spool) is a
`StreamedBody`: its length up front (a Content-Length: many servers refuse
chunked uploads), its bytes made as they are sent (`Pool.request_streamed`),
on a connection of its own that writes only as fast as the server reads.
"""
from __future__ import annotations

import asyncio
import base64
import ssl
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httptools
import yarl

from providers.ticker import Ticker

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HIGH_WATER = 512 * 1024    # answer bytes waiting to be read past which the connection stops reading
_LOW_WATER = 64 * 1024
_MOST_TARGETS = 4096        # parsed URLs kept (a provider calls a handful)
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})

Resolve = Callable[[str, int], Awaitable[list[str]]]     # host, port -> addresses to try, in order


class Broken(Exception):
    """The exchange failed: the connection broke, or the answer was not HTTP."""


# How a failed exchange is raised to a reader: broken, or silent past its idle timeout.
BROKEN = (Broken, TimeoutError)


class ConnectFailed(Broken):
    """No connection could be made (refused, unreachable, name not found)."""

    def __init__(self, message: str, os_error: OSError | None = None) -> None:
        super().__init__(message)
        self.os_error = os_error


class Headers(dict[str, str]):
    """An answer's headers, looked up in any case (names are kept lower-cased);
    a repeated header keeps its first value."""

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())


class _Target:
    """What a URL says about where and how to connect, parsed once per URL."""
    __slots__ = ("key", "host", "port", "tls", "target", "host_header", "basic")

    def __init__(self, url: str) -> None:
        u = yarl.URL(url, encoded=True)
        scheme = (u.scheme or "").lower()
        if scheme not in _DEFAULT_PORTS or not u.host:
            raise ValueError(f"not an http(s) URL with a host: {url!r}")
        self.host = u.host
        self.port = u.port or _DEFAULT_PORTS[scheme]
        self.tls = scheme == "https"
        self.key = (scheme, self.host, self.port)
        target = u.raw_path_qs or "/"
        authority = u.raw_host or self.host
        if ":" in authority and not authority.startswith("["):
            authority = f"[{authority}]"           # an IPv6 literal
        if u.explicit_port and u.port != _DEFAULT_PORTS[scheme]:
            authority = f"{authority}:{u.port}"
        _check_line(target)
        _check_line(authority)
        self.target = target.encode("ascii")
        self.host_header = authority.encode("idna") if not authority.isascii() else authority.encode()
        self.basic: str | None = None
        if u.raw_user is not None:
            creds = f"{u.user or ''}:{u.password or ''}".encode()
            self.basic = "Basic " + base64.b64encode(creds).decode()


def _check_line(value: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError("a header or URL holds a line break")


_TARGETS: dict[str, _Target] = {}


def target_of(url: str) -> _Target:
    found = _TARGETS.get(url)
    if found is None:
        if len(_TARGETS) >= _MOST_TARGETS:
            _TARGETS.clear()
        found = _TARGETS[url] = _Target(url)
    return found


@dataclass(frozen=True, slots=True)
class StreamedBody:
    """A request body sent in pieces: `length` bytes, made by `pieces()`, called afresh for each
    send (a failover, a redirect that repeats the request: each sends it from the start)."""
    length: int
    pieces: Callable[[], AsyncGenerator[bytes, None]]


def request_head(method: str, t: _Target, headers: dict[str, str], length: int) -> bytes:
    """The request line and headers, in one piece: Host, the caller's headers as they
    are (a line break in one is refused), Content-Length when there is a body to send."""
    lines = [method.encode("ascii"), b" ", t.target, b" HTTP/1.1\r\nhost: ", t.host_header, b"\r\n"]
    authorization = False
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"header {name!r} holds a line break or a colon")
        low = name.lower()
        if low in ("host", "content-length", "transfer-encoding", "connection"):
            continue        # the client's to set
        authorization = authorization or low == "authorization"
        lines += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
    if t.basic is not None:
        if authorization:
            raise ValueError("credentials in the URL and an Authorization header both")
        lines += (b"authorization: ", t.basic.encode(), b"\r\n")
    if length or method not in _NO_BODY_METHODS:
        lines += (b"content-length: ", str(length).encode(), b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


class Answer:
    """One answer: its status and headers once they have arrived, its body as it
    arrives. `content` is the answer itself (what readers of a body call)."""

    def __init__(self, conn: _Connection, head_only: bool) -> None:
        self._conn: _Connection | None = conn
        self.head_only = head_only
        self.status = 0
        self._raw: list[tuple[bytes, bytes]] = []
        self._headers: Headers | None = None
        self.content_length: int | None = None
        self.content_type = ""      # the media type, lower-cased, without its parameters
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._done = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._head: asyncio.Future[None] = conn.loop.create_future()
        self._inflate: Any = None
        self.got_bytes = False      # any byte of an answer arrived (a failure before is a stale connection's)

    @property
    def content(self) -> Answer:
        return self

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            h = Headers()
            for name, value in self._raw:
                h.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            self._headers = h
        return self._headers

    # -- fed by the connection -------------------------------------------------

    def _headed(self, status: int, raw: list[tuple[bytes, bytes]]) -> None:
        self.status, self._raw = status, raw
        for name, value in raw:
            low = name.lower()
            if low == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    pass
            elif low == b"content-type":
                self.content_type = value.partition(b";")[0].strip().lower().decode("latin-1")
            elif low == b"content-encoding":
                coding = value.strip().lower()
                if coding in (b"gzip", b"x-gzip"):
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                elif coding == b"deflate":
                    self._inflate = zlib.decompressobj()
                elif coding not in (b"", b"identity"):
                    raise Broken(f"answered with a content encoding it was not asked for ({coding.decode()!r})")
        if self._inflate is not None:
            self.content_length = None
        if not self._head.done():
            self._head.set_result(None)

    def _feed(self, data: bytes) -> None:
        if self._inflate is not None:
            try:
                data = self._inflate.decompress(data)
            except zlib.error:
                raise Broken("answered with a body that does not decompress") from None
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and self._conn is not None:
            self._conn.pause()
        self._wake()

    def _finish(self) -> None:
        if self._inflate is not None:
            rest = self._inflate.flush()
            if rest:
                self._chunks.append(rest)
                self._size += len(rest)
        self._done = True
        self._conn = None
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._error = error
        self._conn = None
        if not self._head.done():
            self._head.set_exception(error)
            self._head.exception()      # retrieved: a caller that gave up already need not see it
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- read by the caller ------------------------------------------------------

    async def _wait(self) -> None:
        conn = self._conn
        if conn is None:
            raise Broken("the answer was let go of before it was read")
        self._waiter = conn.loop.create_future()
        await self._waiter

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        if len(chunks) > 0:
            chunks.clear()
        self._size = 0
        if self._conn is not None:
            self._conn.resume()
        return data

    async def read(self, n: int = -1) -> bytes:
        """The whole body (n < 0), or what has arrived, up to `n` bytes, once some has."""
        if n < 0:
            while not self._done:
                if self._error is not None:
                    raise self._error
                await self._wait()
            return self._take() if self._chunks else b""
        while not self._chunks:
            if self._done:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        data = self._take()
        if len(data) > n:
            self._chunks.appendleft(data[n:])
            self._size = len(data) - n
            data = data[:n]
        return data

    def iter_any(self) -> _Pieces:
        """The body in whatever pieces it arrives (all that is waiting, joined)."""
        return _Pieces(self)

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        while True:
            data = await self.read(n)
            if not data:
                return
            yield data

    def at_eof(self) -> bool:
        return self._done and not self._chunks

    def release(self) -> None:
        """Done with this answer: a connection still reading it is closed (it can't be reused)."""
        conn = self._conn
        if conn is not None and not self._done:
            self._conn = None
            conn.close()


class _Pieces:
    """`Answer.iter_any`: an iterator, not an async generator (each of those is
    registered with the loop and unregistered when done: ~1 µs a stream)."""
    __slots__ = ("_answer",)

    def __init__(self, answer: Answer) -> None:
        self._answer = answer

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        a = self._answer
        while True:
            if a._chunks:
                return a._take()
            if a._done:
                raise StopAsyncIteration
            if a._error is not None:
                raise a._error
            await a._wait()


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one exchange at a time, answers parsed by llhttp."""

    def __init__(self, pool: Pool, key: tuple[str, str, int]) -> None:
        self.pool, self.key = pool, key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self._raw: list[tuple[bytes, bytes]] = []
        self._informational = False
        self._until_eof = False
        self.closed = False
        self.idle_since = 0.0
        self.used = False
        self._paused = False
        self._ticker = Ticker.of(self.loop)
        self._idle_s: float | None = None    # while an answer is due: the silence it may keep (the ticker checks)
        self._last = 0.0                     # when a byte last went either way (loop time)

    # -- asyncio -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport      # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None:
            self.close()        # bytes nobody asked for: the connection is not in a known state
            return
        answer.got_bytes = True
        self._last = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._failed(Broken("answered with a protocol switch"))
        except httptools.HttpParserError as e:
            cause = e.__context__
            self._failed(cause if isinstance(cause, Broken) else Broken(f"answered with malformed HTTP ({e})"))

    def eof_received(self) -> bool | None:
        return None     # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._gone(self)
        answer = self.answer
        if answer is not None:
            if self._until_eof and answer.status:
                self._complete()            # an answer without a length ends with its connection
            else:
                self._failed(Broken("the connection closed before the answer ended"
                                    + (f" ({type(exc).__name__})" if exc else "")))
        self._stop_idle_check()

    def pause_writing(self) -> None:
        pass    # a request body is in memory already: let the transport buffer it

    def resume_writing(self) -> None:
        pass

    # -- llhttp ----------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        raw, self._raw = self._raw, []
        if 100 <= status < 200:
            self._informational = True      # 100 Continue and the like: the answer is still to come
            return
        answer = self.answer
        assert answer is not None
        chunked = any(n.lower() == b"transfer-encoding" for n, _ in raw)
        self._until_eof = not chunked and status not in (204, 304) and not any(
            n.lower() == b"content-length" for n, _ in raw)
        answer._headed(status, raw)
        if answer.head_only:
            self._complete(reuse=False)     # a HEAD answer's length says nothing about bytes to come

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        if answer is not None:
            answer._feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._complete(reuse=self.parser.should_keep_alive())

    # -- the exchange --------------------------------------------------------------

    def send(self, head: bytes, body: bytes, idle_timeout_s: float | None, head_only: bool) -> Answer:
        assert self.transport is not None
        answer = self.answer = Answer(self, head_only)
        self.used = True
        self._until_eof = False
        if body and len(body) < 64 * 1024:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            if body:
                self.transport.write(body)
        if idle_timeout_s is not None:
            # The process's one ticker checks the silence (providers/ticker.py), where a timer of
            # the exchange's own was armed and cancelled on every request.
            self._last = self.loop.time()
            self._idle_s = idle_timeout_s
            self._ticker.add(self, self.loop)
        return answer

    def check(self, now: float) -> bool:
        """The ticker's: False once no answer is due, or once it has been silent too long (failed here)."""
        idle_s = self._idle_s
        if idle_s is None or self.answer is None:
            self._idle_s = None
            return False
        if self.loop.time() - self._last < idle_s:
            return True
        self._idle_s = None
        self._failed(TimeoutError(f"no byte in {idle_s:g}s"))
        return False

    def stop(self) -> None:
        pass

    def _stop_idle_check(self) -> None:
        if self._idle_s is not None:
            self._idle_s = None
            self._ticker.remove(self)

    def _complete(self, reuse: bool = False) -> None:
        answer, self.answer = self.answer, None
        self._stop_idle_check()
        if answer is not None:
            answer._finish()
        self.resume()
        if reuse and not self.closed and not self._until_eof:
            self.pool._put_back(self)
        else:
            self.close()

    def _failed(self, error: BaseException) -> None:
        answer, self.answer = self.answer, None
        self._stop_idle_check()
        self.close()
        if answer is not None:
            answer._fail(error)

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool._gone(self)
            if self.transport is not None:
                self.transport.close()


class _Uploading(_Connection):
    """A connection for one request whose body is sent in pieces (`StreamedBody`), closed after
    its answer: an upload may be answered before it has all gone (a 413, a 401), and a
    connection in that state is fit for nothing else. A piece is written only while the
    transport's buffer is under its high-water mark (`pause_writing`), so a piece or two wait in
    memory at most, and the body is made only as fast as the server reads it."""

    def __init__(self, pool: Pool, key: tuple[str, str, int]) -> None:
        super().__init__(pool, key)
        self._sending: asyncio.Task[None] | None = None
        self._full = False          # the transport's buffer is past its high-water mark
        self._drained: asyncio.Future[None] | None = None

    def send_streamed(self, head: bytes, body: StreamedBody, idle_timeout_s: float | None) -> Answer:
        answer = self.send(head, b"", idle_timeout_s, False)
        self._sending = self.loop.create_task(self._send_body(body))
        return answer

    async def _send_body(self, body: StreamedBody) -> None:
        sent = 0
        try:
            async with aclosing(body.pieces()) as pieces:
                async for piece in pieces:
                    if self.closed:
                        return      # answered, or broken: no one wants the rest
                    sent += len(piece)
                    if sent > body.length:
                        raise Broken(f"the request body is longer than its Content-Length ({body.length})")
                    assert self.transport is not None
                    self.transport.write(piece)
                    self._last = self.loop.time()      # sending is not silence (the idle timeout)
                    await self._drain()
            if sent != body.length and not self.closed:
                raise Broken(f"the request body ended {body.length - sent} bytes short of its Content-Length")
        except Broken as e:
            self._failed(e)
        except Exception as e:      # the body could not be read (its spool closed, a disk error)
            self._failed(Broken(f"the request body could not be read ({type(e).__name__}: {e})"))

    async def _drain(self) -> None:
        if not self._full:
            await asyncio.sleep(0)      # the loop runs between pieces even where the socket takes them at once
            return
        self._drained = self.loop.create_future()
        await self._drained

    def pause_writing(self) -> None:
        self._full = True

    def resume_writing(self) -> None:
        self._full = False
        self._wake_sender()

    def _wake_sender(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _complete(self, reuse: bool = False) -> None:
        super()._complete(reuse=False)      # never back to the pool (see the class)

    def close(self) -> None:
        super().close()
        self._stop_sending()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_sending()

    def _stop_sending(self) -> None:
        self._wake_sender()
        sending = self._sending
        if sending is not None and sending is not asyncio.current_task():
            sending.cancel()


_TLS: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


class Pool:
    """One provider's connections, at most `max_connections` open at once
    (across its origins); an idle one is kept `keepalive_s`."""

    def __init__(self, *, max_connections: int = 256, keepalive_s: float = 30.0,
                 resolve: Resolve | None = None) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self._resolve = resolve         # None: the system's resolver, at connect time
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._all: set[_Connection] = set()

    async def request(self, method: str, url: str, headers: dict[str, str], body: bytes,
                      idle_timeout_s: float | None) -> Answer:
        """Send one request; the answer once its status and headers have arrived."""
        t = target_of(url)
        head = request_head(method, t, headers, len(body))
        for _ in range(2):
            conn = await self._acquire(t)
            reused = conn.used
            answer = conn.send(head, body, idle_timeout_s, method == "HEAD")
            try:
                await answer._head
            except Broken:
                if reused and not answer.got_bytes:
                    continue        # a kept-alive connection the server had closed: once more, afresh
                raise
            except BaseException:
                answer.release()    # cancelled: the connection is mid-exchange, so it goes
                raise
            return answer
        raise Broken("the connection closed before the answer began")

    async def request_streamed(self, method: str, url: str, headers: dict[str, str], body: StreamedBody,
                               idle_timeout_s: float | None) -> Answer:
        """Send one request whose body is made as it is sent (an upload), on a new connection
        that closes after its answer; the answer once its status and headers have arrived
        (which may be before the whole body has gone)."""
        t = target_of(url)
        head = request_head(method, t, headers, body.length)
        while self._open >= self.max_connections and not self._close_one_idle():
            await self._room()
        conn = await self._connect(t, _Uploading)
        assert isinstance(conn, _Uploading)
        answer = conn.send_streamed(head, body, idle_timeout_s)
        try:
            await answer._head
        except BaseException:
            answer.release()    # cancelled (or broken): the connection goes, and its sending with it
            raise
        return answer

    async def _acquire(self, t: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        while True:
            idle = self._idle.get(t.key)
            now = loop.time()
            while idle:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive_s:
                    return conn
                conn.close()
            if self._open < self.max_connections or self._close_one_idle():
                return await self._connect(t)
            await self._room()

    async def _room(self) -> None:
        """Wait for a connection to close or come back (the pool is at `max_connections`)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()

    def _close_one_idle(self) -> bool:
        """At the limit with none idle for this origin: make room by closing one idle for another."""
        for conns in self._idle.values():
            while conns:
                conn = conns.pop(0)
                if not conn.closed:
                    conn.close()
                    return True
        return False

    async def _connect(self, t: _Target, kind: type[_Connection] = _Connection) -> _Connection:
        loop = asyncio.get_running_loop()
        self._open += 1
        conn: _Connection | None = None
        try:
            hosts = [t.host] if self._resolve is None else await self._resolve(t.host, t.port)
            error: OSError | None = None
            for host in hosts:
                try:
                    _, proto = await loop.create_connection(
                        lambda: kind(self, t.key), host, t.port,
                        ssl=_tls() if t.tls else None, server_hostname=t.host if t.tls else None)
                    conn = proto
                    break
                except OSError as e:
                    error = e
            if conn is None:
                reason = (error.strerror or str(error)) if error is not None else "no address"
                raise ConnectFailed(f"cannot connect to {t.host}:{t.port}: {reason}", error)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        self._all.add(conn)
        return conn

    def _put_back(self, conn: _Connection) -> None:
        conn.idle_since = conn.loop.time()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake_one()

    def _gone(self, conn: _Connection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            self._open -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._idle.clear()
