"""A stream's bytes cut into whole events (`Upstream.sse_blocks`), so an error
that ends a stream never lands in the middle of one."""
from __future__ import annotations

from typing import TYPE_CHECKING

from providers import sse
from providers.connections import BROKEN, Answer

if TYPE_CHECKING:
    from providers.http import Upstream


class SseBlocks:
    """`Upstream.sse_blocks`: an iterator, not an async generator, for two reasons.
    It can say that its next step would end the stream without waiting (`drained`):
    a stream whose upstream answered whole before its first block went out is
    then sent with one message, head, events and end (gateway/relay.py). And a
    generator is registered with the event loop when it starts and finalized by it."""
    __slots__ = ("_upstream", "_resp", "_pieces", "_watch", "_parts", "_size", "_first", "_over")

    def __init__(self, upstream: Upstream, resp: Answer, watch: sse.Watch | None) -> None:
        self._upstream, self._resp, self._watch = upstream, resp, watch
        self._pieces = resp.content.iter_any()
        self._parts: list[bytes] = []   # the unfinished event, as it arrived: joined once, when it ends
        self._size = 0
        self._first = True
        self._over = False

    def __aiter__(self) -> SseBlocks:
        return self

    def drained(self) -> bool:
        """Whether the stream has nothing more to give: its next step ends it, without waiting."""
        return self._over or (not self._first and not self._parts and self._resp.at_eof())

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        try:
            if self._first and self._resp.content_type != "text/event-stream":
                media = self._resp.content_type
                raise self._upstream.malformed(f"streamed {media or 'no content type'}, not an event stream")
            while True:
                try:
                    data = await self._pieces.__anext__()
                except StopAsyncIteration:
                    break
                block = self._cut(data)
                if block:
                    return block
        except BROKEN as e:
            self._end()
            raise self._upstream._failure(e, "broke the stream off") from None
        except BaseException:
            self._end()
            raise
        self._end()
        block = self._rest()
        if block:
            return block
        raise StopAsyncIteration

    def _cut(self, data: bytes) -> bytes:
        """The whole events that `data` completes, checked and watched (b"": none to relay yet)."""
        # Only the new bytes are searched (and the 3 before them, for a
        # separator cut in two), so a long event costs linear time.
        parts = self._parts
        tail = parts[-1][-3:] if parts else b""
        end = _events_end(tail + data) - len(tail) if tail else _events_end(data)
        if end <= 0:
            parts.append(data)
            self._size += len(data)
            if self._size > self._upstream.max_event_bytes:
                raise self._upstream.malformed(f"sent an event over {self._upstream.max_event_bytes} bytes")
            return b""
        block = b"".join((*parts, data[:end])) if parts else data[:end]
        rest = data[end:]
        self._parts, self._size = ([rest], len(rest)) if rest else ([], 0)
        if self._first:
            if not self._upstream.check_first(block):
                return b""      # comments only (keep-alives): nothing for the client yet
            self._first = False
        return block if self._watch is None else self._watch(block)

    def _rest(self) -> bytes:
        """What the upstream left unterminated when it ended, as a last event (b"": nothing)."""
        pending = b"".join(self._parts)
        self._parts = []
        block = b""
        if pending.strip() and not (self._first and not self._upstream.check_first(pending + b"\n\n")):
            self._first = False
            block = pending + b"\n\n" if self._watch is None else self._watch(pending + b"\n\n")
        if self._first:
            raise self._upstream.malformed("ended the stream before its first event")
        return block

    def _end(self) -> None:
        self._over = True
        self._resp.release()

    async def aclose(self) -> None:
        """Done reading: the upstream answer is let go of (its connection closed if unfinished)."""
        self._end()


def _events_end(data: bytes) -> int:
    """Offset just past the last complete SSE event in `data` (0: none)."""
    if data.endswith(b"\n\n"):      # the usual case, whole events: no search (a CRLF one ends in \r\n)
        return len(data)
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
