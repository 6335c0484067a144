"""One timer a process for the deadlines of everything in flight.

A stream's deadline and client watch (gateway/relay.py), an upstream
attempt's time limit (`deadline`, gateway/router.py), the time a client
has to send its request (gateway/http_protocol.py) and the silence an
upstream connection may keep while an answer is due (providers/connections.py)
join a set that one timer checks every TICK_S while anything is in it,
instead of arming a timer each. Kept-alive connections waiting for their
next request join it as one member, gateway/http_protocol.py's IdleWheel.
On uvloop, a `call_later` and its cancel
cost 2.5–4.1 µs against 0.13 for joining and leaving a set, and an
`asyncio.timeout` block 8.5–9.5 µs against 1.6 for `deadline`
(docs/performance.md, runs K and L). A deadline passes up to TICK_S late,
which no limit measured in seconds notices.
"""
from __future__ import annotations

import asyncio
import time
import weakref
from types import TracebackType
from typing import Protocol

TICK_S = 0.05       # how late past its deadline a check fires, at most


class Checked(Protocol):
    def check(self, now: float) -> bool:
        """False: this one is over (done, or ended here), and leaves the set."""

    def stop(self) -> None:
        """It left the set: undo what `check` started."""


class Ticker:
    """What is in flight on one event loop, and the one timer that checks it:
    armed when something joins an idle ticker, re-armed while any is left."""
    __slots__ = ("checked", "timer", "__weakref__")     # not the loop: the loop is its key in _TICKERS (weakly)

    def __init__(self) -> None:
        self.checked: set[Checked] = set()
        self.timer: asyncio.TimerHandle | None = None

    @staticmethod
    def of(loop: asyncio.AbstractEventLoop) -> Ticker:
        global _LAST
        last = _LAST
        if last is not None and last[0] is loop:    # the process's one loop: no weak reference made
            return last[1]
        ticker = _TICKERS.get(loop)
        if ticker is None:
            ticker = _TICKERS[loop] = Ticker()
        _LAST = (loop, ticker)
        return ticker

    def add(self, one: Checked, loop: asyncio.AbstractEventLoop) -> None:
        self.checked.add(one)
        if self.timer is None:
            self.timer = loop.call_later(TICK_S, self._tick, loop)

    def remove(self, one: Checked) -> None:
        self.checked.discard(one)
        one.stop()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.perf_counter()
        for one in list(self.checked):      # a copy: a check may end what it checks, and that leaves the set
            if not one.check(now):
                self.checked.discard(one)
        self.timer = loop.call_later(TICK_S, self._tick, loop) if self.checked else None


# One ticker per event loop (a process serves on one; tests may run several).
_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()
_LAST: tuple[asyncio.AbstractEventLoop, Ticker] | None = None     # the last one asked for (holds one loop at most)


class deadline:
    """`with deadline(seconds):` raises TimeoutError out of the block when it runs past
    `seconds` (checked by the ticker: the task is cancelled where it waits inside the
    block, and the cancellation turned into TimeoutError as the block is left). Used as
    asyncio.timeout, without a timer of its own; for the current task only."""
    __slots__ = ("_seconds", "_task", "_at", "_expired", "_ticker")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False

    def __enter__(self) -> deadline:
        task = asyncio.current_task()
        assert task is not None     # only a task waits on what this guards
        self._task = task
        self._at = time.perf_counter() + self._seconds
        loop = task.get_loop()
        self._ticker = Ticker.of(loop)
        self._ticker.add(self, loop)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._ticker.remove(self)
        if not self._expired:
            return
        # The ticker cancelled this task; whatever else cancelled it too keeps its cancellation.
        if self._task.uncancel() == 0 and kind is not None and issubclass(kind, asyncio.CancelledError):
            raise TimeoutError from None

    def check(self, now: float) -> bool:
        # Run by the ticker between steps of the task: while this is in the set, the task waits
        # inside the block, so the cancellation lands there.
        if now < self._at:
            return True
        self._expired = True
        self._task.cancel()
        return False

    def stop(self) -> None:
        pass
