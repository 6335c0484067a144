"""A client's upload kept on disk as it arrives (an audio file up to 25 MB), so
no one holds it whole in memory: the gateway writes it piece by piece while
the form is read, adapters read it back from the start, as often as a
failover asks, in pieces of `PIECE` bytes.

The file is the system temp dir's (`$TMPDIR`, else /tmp), unnamed where the
system allows (O_TMPFILE on Linux: nothing to find or leave behind in the
folder), and its space is freed when the spool is closed, which the gateway
does once the request has ended, however it ended."""
from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

PIECE = 64 * 1024     # what one read hands on: a socket buffer's worth


class Spool:
    """Bytes appended as they arrive (`write`), read back at any offset (`read_at`, `pieces`, `mapped`)."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(buffering=0)    # written and read by position (os.write, pread)
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        """Append `data` (a write of one received piece to the page cache: short enough for the event loop)."""
        fd = self._file.fileno()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        self.size += len(data)

    def read_at(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes from `offset` (a positional read: readers share no file position)."""
        # fileno(), not a number kept: once closed it raises ValueError, never reading a file that took the number over
        return os.pread(self._file.fileno(), n, offset)

    async def pieces(self) -> AsyncIterator[bytes]:
        """The whole file from its start, PIECE bytes at a time."""
        offset = 0
        while offset < self.size:
            piece = self.read_at(offset, min(PIECE, self.size - offset))
            if not piece:
                raise OSError(f"the spool ended at {offset} of its {self.size} bytes")
            offset += len(piece)
            yield piece

    @contextmanager
    def mapped(self) -> Iterator[mmap.mmap | bytes]:
        """The file as a read-only buffer (mapped, so reading its header pages in only that header)."""
        if self.size == 0:
            yield b""
            return
        with mmap.mmap(self._file.fileno(), self.size, access=mmap.ACCESS_READ) as view:
            yield view

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class SpooledUpload:
    """A file a client sent, kept in a spool: its name, media type (from its bytes) and where its bytes are."""
    filename: str
    media_type: str
    spool: Spool = field(repr=False)

    @property
    def size(self) -> int:
        return self.spool.size
