"""uvicorn's httptools protocol with a deadline for reading each request.

uvicorn bounds the silence between requests on a kept-alive connection, but
not the time a client takes to send a request's head and body: one that
declares 10 bytes and sends 2, or trickles its headers, would hold its
connection (and the gateway's memory for it) for as long as it likes. Here a
request must arrive whole within `server.read_timeout_s` of its first byte
(of the connection, for the first one); past that, a request whose head is
still incomplete gets a 408 and the connection closes, and one whose body is
incomplete has its connection closed (its handler sees the client leave).

The deadline is checked by the process's one ticker (providers/ticker.py): a
request joins a set when it begins and leaves it when it has been read, where
a timer of its own would cost a call_later and a cancel (2.5–4 µs on a slow core
against 0.1). A request past its deadline is cut off up to TICK_S (0.05 s) late.

The wait for the next request on a kept-alive connection (uvicorn's
`timeout_keep_alive`) is timed the same way, where uvicorn arms a timer after
every answer and cancels it when the next request comes: an idle connection
is filed under the second its wait ends (`IdleWheel`), and the ticker closes
the ones filed under seconds gone by, up to a second late. Idle connections
in their thousands cost a tick nothing but the seconds that are due.

And what one turn of the event loop writes to a connection goes out in one
write (`TurnWrites`): an answer's head and body, or a stream's head, first
chunk and end when they are ready together, cost one system call, not two
or three (docs/performance.md has the figures). A stream's chunks that
arrive over time still go out as they arrive, one turn later at most.
"""
from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from providers.ticker import Ticker

_BODY = orjson.dumps({"error": {
    "message": "The request was not received in time; send it whole and promptly.",
    "type": "invalid_request_error", "param": None, "code": "request_timeout"}})
_TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
              b"content-length: " + str(len(_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _BODY)


class DeadlineProtocol(HttpToolsProtocol):
    """Set `read_timeout_s` before serving (`gateway serve` and each worker process do, from the config)."""
    read_timeout_s = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = TurnWrites(transport, self.loop)  # type: ignore[assignment]
        self._ticker = Ticker.of(self.loop)
        self._read_by: float | None = None
        self._wheel = IdleWheel.of(self.loop)
        self._idle_in: set[DeadlineProtocol] | None = None     # the wheel's second it waits in, between requests
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_by is None:
            self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        # The answer's last bytes go out now, not at the end of the turn: what the
        # request does after its answer (metrics, settling, the request log) runs
        # while they travel, instead of before.
        self.transport.flush()      # type: ignore[attr-defined]
        # uvicorn's own, but for the wait for the next request: the wheel's, not a timer's.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_in = self._wheel.wait(self, self.timeout_keep_alive, self.loop)

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this when bytes arrive, when the connection is lost and after an answer.
        idle_in = self._idle_in
        if idle_in is not None:
            idle_in.discard(self)
            self._idle_in = None
        super()._unset_keepalive_if_required()      # its timer, were anything to arm one

    def idle_too_long(self) -> None:
        """The wheel's: no next request came within the keep-alive time."""
        self._idle_in = None
        self.timeout_keep_alive_handler()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._unset_keepalive_if_required()     # uvicorn does only when the loss was clean
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._read_by = time.perf_counter() + self.read_timeout_s
        self._ticker.add(self, self.loop)

    def _disarm(self) -> None:
        if self._read_by is not None:
            self._read_by = None
            self._ticker.remove(self)

    def check(self, now: float) -> bool:
        """The ticker's: False once the request was read, or was not in time (and is cut off here)."""
        if self._read_by is None:
            return False
        if now < self._read_by:
            return True
        self._too_slow()
        return False

    def stop(self) -> None:
        pass

    def _too_slow(self) -> None:
        self._read_by = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:   # no handler has this request yet
            self.transport.write(_TIMED_OUT)
        self.transport.close()      # a handler reading the body sees the client leave


class IdleWheel:
    """The kept-alive connections of one event loop waiting for their next request,
    filed by the whole second their wait ends; the ticker looks only at the seconds
    gone by. A connection leaves its second when bytes arrive or it is lost."""
    __slots__ = ("seconds", "__weakref__")    # not the loop: the loop is its key in _WHEELS (weakly)

    def __init__(self) -> None:
        # Filed in time order (every wait is as long); the ticker checks the wheel while any second is filed.
        self.seconds: dict[int, set[DeadlineProtocol]] = {}

    @staticmethod
    def of(loop: asyncio.AbstractEventLoop) -> IdleWheel:
        wheel = _WHEELS.get(loop)
        if wheel is None:
            wheel = _WHEELS[loop] = IdleWheel()
        return wheel

    def wait(self, conn: DeadlineProtocol, seconds: float, loop: asyncio.AbstractEventLoop) -> set[DeadlineProtocol]:
        """File `conn` to be closed once `seconds` have gone by (up to a second later); its second."""
        at = int(time.perf_counter() + seconds) + 1
        filed = self.seconds.get(at)
        if filed is None:
            if not self.seconds:
                Ticker.of(loop).add(self, loop)
            filed = self.seconds[at] = set()
        filed.add(conn)
        return filed

    def check(self, now: float) -> bool:
        """The ticker's: close the connections of the seconds gone by; False once none wait."""
        for at in list(self.seconds):
            if at > now:
                break
            for conn in list(self.seconds.pop(at)):
                conn.idle_too_long()
        return bool(self.seconds)

    def stop(self) -> None:
        pass


_WHEELS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IdleWheel] = weakref.WeakKeyDictionary()


class TurnWrites:
    """A connection's transport whose writes of one turn of the loop are joined into one.
    Everything else is the transport's own; closing writes what is pending first."""
    __slots__ = ("_transport", "_loop", "_pending")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Write what is pending now (an answer is complete)."""
        self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def configure(server: Any) -> type[DeadlineProtocol]:
    """The protocol class for a config's `server` section."""
    DeadlineProtocol.read_timeout_s = server.read_timeout_s
    return DeadlineProtocol
