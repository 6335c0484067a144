"""One pipelined connection to Redis for the request path.

Every command is written as soon as it is asked for, on one connection, and
answered in order: no pool to wait on, no connection per request, and a burst
of a thousand requests is a thousand commands in flight, not a queue for
connections that times out and fails open. Commands asked for in the same
turn of the event loop go out in one write.

Redis runs the commands of one connection in the order they arrive, and each
script atomically, so admission stays exact. A Redis that has not answered
the oldest command within the outage threshold is down: every command in
flight fails with `StoreDown` and the connection is dropped (the next command
connects again). A refused or broken connection is down at once.

The request path's scripts (and a few reads) go on one such connection, and
the request log's batches on another (a batch made whole off the loop is one
write and one reply); the control plane keeps redis-py.

On Redis Cluster every key sent here is in one hash slot (the limits', see
cluster.py): the connection is to the primary serving it, found by asking the
nodes last known (the URL's first) with CLUSTER SLOTS as it connects. A node
that answers MOVED or ASK no longer serves the slot: the commands in flight
fail with `StoreDown`, as for an outage, and the next one asks again. So a
failover of that shard is an outage of the limits until a replica is promoted.
"""
from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from gateway.store.base import StoreDown
from gateway.store.redis.cluster import cluster_nodes, slot_owner


class ReplyError(Exception):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`): Redis is up, the command failed."""


def bulk(x: Any) -> bytes:
    """One argument as a RESP bulk string."""
    kind = type(x)
    b: bytes = x.encode() if kind is str else b"%d" % x if kind is int else x if kind is bytes else str(x).encode()
    return b"$%d\r\n%b\r\n" % (len(b), b)


_MOST_REMEMBERED = 8192
_remembered: dict[tuple[type, Any], bytes] = {}


def remembered(x: str | int | bytes) -> bytes:
    """`bulk(x)` for a value that comes back request after request (a key, a limit, a
    flag): encoded once. (Type in the key: 1 and "1" are different arguments.)"""
    b = _remembered.get((type(x), x))
    if b is None:
        if len(_remembered) >= _MOST_REMEMBERED:
            _remembered.clear()
        b = _remembered[(type(x), x)] = bulk(x)
    return b


def encode(args: tuple[Any, ...] | list[Any]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join([bulk(a) for a in args])


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray, at: int) -> tuple[Any, int]:
    """One reply from `buf` at `at`: (value, where the next begins); _Incomplete if cut short."""
    end = buf.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete
    kind, line = buf[at], bytes(buf[at + 1:end])
    at = end + 2
    if kind == 58:          # ':' integer
        return int(line), at
    if kind == 36:          # '$' bulk string
        n = int(line)
        if n < 0:
            return None, at
        if len(buf) < at + n + 2:
            raise _Incomplete
        return bytes(buf[at:at + n]), at + n + 2
    if kind == 42:          # '*' array
        n = int(line)
        if n < 0:
            return None, at
        items = []
        for _ in range(n):
            item, at = _parse(buf, at)
            items.append(item)
        return items, at
    if kind == 43:          # '+' simple string
        return line, at
    if kind == 45:          # '-' error
        return ReplyError(line.decode(errors="replace")), at
    raise StoreDown(f"Redis: a reply of unknown type {kind!r}")


_NOT_HERE = ("MOVED ", "ASK ")


class _Protocol(asyncio.Protocol):
    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        if self.pipe.protocol is not self:      # a connection already given up on
            return
        self.buf += data
        at = 0
        waiting = self.pipe.waiting
        try:
            while at < len(self.buf):
                value, at = _parse(self.buf, at)
                if not waiting:
                    raise StoreDown("Redis: a reply no command asked for")
                done, _ = waiting.popleft()
                if isinstance(value, ReplyError) and str(value).startswith(_NOT_HERE):
                    # this node no longer serves the slot (Redis Cluster): nothing sent here will run
                    waiting.appendleft((done, 0.0))
                    raise StoreDown(f"Redis: {value}")
                if not isinstance(done, asyncio.Future):
                    done(value)             # a reply callback (`send_with`): called at once
                elif not done.done():
                    if isinstance(value, ReplyError):
                        done.set_exception(value)
                    else:
                        done.set_result(value)
        except _Incomplete:
            pass
        except (StoreDown, ValueError) as e:       # a stream that makes no sense: start afresh
            self.pipe.down(StoreDown(str(e)))
            return
        del self.buf[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pipe.protocol is self:          # not an old connection, closed after a new one opened
            self.pipe.down(StoreDown(f"Redis closed the connection: {exc!r}" if exc
                                     else "Redis closed the connection"))


class Pipe:
    """The pipelined connection; `call(*args)` sends a command and awaits its reply."""

    def __init__(self, url: str, timeout_s: float, name: str, slot: int | None = None) -> None:
        u = urlsplit(url)
        if u.scheme not in ("redis", "rediss"):
            raise ValueError(f"the pipelined client takes redis:// and rediss:// URLs, not {u.scheme}://")
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 6379
        self.ssl = ssl.create_default_context() if u.scheme == "rediss" else None
        self.timeout_s = timeout_s
        hello: list[tuple[Any, ...]] = []
        if u.password is not None:
            user = unquote(u.username) if u.username else None
            hello.append(("AUTH", user, unquote(u.password)) if user else ("AUTH", unquote(u.password)))
        db = u.path.strip("/")
        if db and db != "0":
            hello.append(("SELECT", int(db)))
        hello.append(("CLIENT", "SETNAME", name))
        self._hello = hello
        # Redis Cluster: the slot every command here is for, and the nodes to ask who serves it.
        self.slot = slot
        self._nodes = [(self.host, self.port)]
        # What each command in flight answers to, oldest first: a future, or a callback
        # that takes the reply (a ReplyError or a StoreDown for a failure).
        self.waiting: collections.deque[tuple[asyncio.Future[Any] | Callable[[Any], None], float]] = \
            collections.deque()
        self._transport: asyncio.Transport | None = None
        self.protocol: _Protocol | None = None         # the connection's, while it is the current one
        self._connecting: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._flush_soon = False
        self._watch: asyncio.TimerHandle | None = None

    async def connect(self) -> None:
        """Connect now rather than on the first command (StoreDown if Redis is not there)."""
        if self._transport is None:
            await self._connect()

    def send_with(self, command: bytes, on_reply: Callable[[Any], None]) -> bool:
        """Write a command already in RESP at once, and call `on_reply` with its reply as soon
        as it is read (a ReplyError or StoreDown for a failure): no future, no extra turn of
        the loop. False while not connected."""
        if self._transport is None:
            return False
        self.waiting.append((on_reply, time.monotonic()))
        self._out.append(command)
        self._flush()
        return True

    async def call(self, *args: Any) -> Any:
        """The reply to one command; ReplyError for an error reply; StoreDown when Redis is down."""
        return await self.call_encoded(encode(args))

    async def call_encoded(self, command: bytes) -> Any:
        """`call` for a command already in RESP."""
        if self._transport is None:
            await self._connect()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self.waiting.append((done, time.monotonic()))
        self._out.append(command)
        if not self._flush_soon:
            self._flush_soon = True
            loop.call_soon(self._flush)
        return await done

    def _flush(self) -> None:
        self._flush_soon = False      # (a flush scheduled meanwhile finds nothing left to write)
        if self._transport is not None and self._out:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    async def _connect(self) -> None:
        if self._connecting is not None:        # someone else is connecting: wait for it
            await asyncio.shield(self._connecting)
            if self._transport is None:
                raise StoreDown("Redis: not connected")
            return
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            host, port = (self.host, self.port) if self.slot is None else await self._owner()
            try:
                async with asyncio.timeout(self.timeout_s):
                    transport, protocol = await loop.create_connection(lambda: _Protocol(self), host, port,
                                                                       ssl=self.ssl)
            except (OSError, TimeoutError) as e:
                raise StoreDown(f"Redis: cannot connect to {host}:{port}: {e!r}") from e
            self._transport, self.protocol = transport, protocol
            self._watch = loop.call_later(self.timeout_s / 4, self._check)
            hellos: list[asyncio.Future[Any]] = []
            for command in self._hello:
                self._out.append(encode([c for c in command if c is not None]))
                hellos.append(loop.create_future())
                self.waiting.append((hellos[-1], time.monotonic()))
            self._flush()
            for done in hellos:
                try:
                    await done
                except ReplyError as e:        # a wrong password or database: Redis is unusable as configured
                    self.down(StoreDown(f"Redis refused the connection's set-up: {e}"))
                    raise StoreDown(f"Redis refused the connection's set-up: {e}") from None
        finally:
            self._connecting.set_result(None)
            self._connecting = None

    async def _owner(self) -> tuple[str, int]:
        """The primary serving `slot`, asked of the nodes last known in turn (Redis Cluster)."""
        why: Exception | None = None
        for host, port in list(self._nodes):
            try:
                async with asyncio.timeout(self.timeout_s):
                    slots = await self._ask(host, port, ("CLUSTER", "SLOTS"))
            except (OSError, TimeoutError, ReplyError, _Incomplete, ValueError) as e:
                why = e
                continue
            if not isinstance(slots, list):
                continue
            self._nodes = cluster_nodes(slots) or self._nodes
            owner = slot_owner(slots, self.slot or 0)
            if owner is not None:
                return owner
            why = StoreDown(f"no node serves slot {self.slot}")
        raise StoreDown(f"Redis: no node of the cluster says who serves slot {self.slot}: {why!r}")

    async def _ask(self, host: str, port: int, command: tuple[Any, ...]) -> Any:
        """One command on a connection of its own (after the set-up's AUTH): its reply."""
        reader, writer = await asyncio.open_connection(host, port, ssl=self.ssl)
        try:
            hellos = [c for c in self._hello if c[0] == "AUTH"]
            writer.write(b"".join(encode([a for a in c if a is not None]) for c in [*hellos, command]))
            buf = bytearray()
            replies: list[Any] = []
            while len(replies) < len(hellos) + 1:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionResetError("closed")
                buf += chunk
                try:
                    at = 0
                    replies = []
                    while len(replies) < len(hellos) + 1:
                        value, at = _parse(buf, at)
                        replies.append(value)
                except _Incomplete:
                    continue
            for value in replies:
                if isinstance(value, ReplyError):
                    raise value
            return replies[-1]
        finally:
            writer.close()

    def _check(self) -> None:
        """Down when the oldest command in flight has waited past the threshold."""
        if self._transport is None:
            return
        if self.waiting and time.monotonic() - self.waiting[0][1] > self.timeout_s:
            self.down(StoreDown(f"Redis did not answer within {self.timeout_s:g}s"))
            return
        self._watch = asyncio.get_running_loop().call_later(self.timeout_s / 4, self._check)

    def down(self, why: StoreDown) -> None:
        """Fail everything in flight and drop the connection."""
        transport, self._transport, self.protocol = self._transport, None, None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        while self.waiting:
            done, _ = self.waiting.popleft()
            if not isinstance(done, asyncio.Future):
                done(why)
            elif not done.done():
                done.set_exception(why)
        self._out.clear()
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        if self._transport is not None:
            self.down(StoreDown("Redis: the store closed"))
