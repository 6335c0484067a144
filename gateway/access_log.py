"""The access log: one JSON line per answered request on stderr (`logging:
{access_log: true}`), never a prompt or a key's secret unless `logging.prompts`
asks for the request's messages. (Not `logging.py`: that name would shadow the
stdlib's in imports.)

The request path only serialises the line and appends it to a list; a thread
writes what has gathered every 50 ms, in one write, so a slow stderr never
holds up the event loop. Not `logging`'s QueueHandler: its record, caller
lookup and copy, and a thread woken per line, cost 11-30 us of CPU a request
here; this costs ~2 us (docs/performance.md, Access log).
"""
from __future__ import annotations

import atexit
import sys
import threading
import time
from typing import Any, BinaryIO

import orjson

from gateway.config.schema import LoggingConfig

_pending: list[bytes] = []      # appended on the event loop, taken by the writer (the GIL keeps both whole)
_writer: threading.Thread | None = None
_stopping = threading.Event()
_EVERY_S = 0.05
_MOST_PENDING = 100_000         # a stderr that stopped taking lines costs lines, not unbounded memory


def write(cfg: LoggingConfig, fields: dict[str, Any], messages: Any = None) -> None:
    """`fields`: what the request was and what it cost; `messages` only with `prompts: true`."""
    if _writer is None:
        _start()
    if messages is not None and cfg.prompts:
        fields["messages"] = messages
    fields["ts"] = round(time.time(), 3)
    if len(_pending) < _MOST_PENDING:
        _pending.append(orjson.dumps(fields, default=str) + b"\n")


def _start(out: BinaryIO | None = None) -> None:
    global _writer
    _writer = threading.Thread(target=_drain, args=(out or sys.stderr.buffer,), name="access-log", daemon=True)
    _writer.start()
    atexit.register(_stop)


def _drain(out: BinaryIO) -> None:
    while not _stopping.wait(_EVERY_S):
        _flush(out)
    _flush(out)


def _flush(out: BinaryIO) -> None:
    if not _pending:
        return
    batch = _pending[:]
    del _pending[:len(batch)]        # lines appended meanwhile stay for the next round
    try:
        out.write(b"".join(batch))
        out.flush()
    except (OSError, ValueError):     # stderr closed: the lines have nowhere to go
        pass


def _stop() -> None:
    """At exit: what has gathered is written before the process ends."""
    if _writer is not None and _writer.is_alive():
        _stopping.set()
        _writer.join(2)
