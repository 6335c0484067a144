"""Files kept for keys, and the small API the rest of the gateway uses on them
(the HTTP handlers in api.py, and batches, which read their input files line
by line and write their output files through it):

  files.begin(owner, purpose)      a NewFile: `write` its bytes as they come, then `finish`
  files.create(owner, purpose, filename, bytes or async pieces)   the same in one call
  files.find(owner, file_id)       one of the key's files, unexpired, or None
  files.lines(record)              its lines, as an async iterator
  files.pieces(asset, first, last) its bytes, a piece at a time
  files.delete(record)             bytes, then record

A file's record is in the state store (`store.files`); its bytes are in the
asset store the videos use (`videos.assets`: a folder or a bucket), under the
file's id as variant `content`. A file is stored only once it is whole and,
as batch input, checked: one that fails leaves neither record nor bytes.
Files past `expires_at` are gone for clients at once; a sweep every minute
deletes their bytes, then their records.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from contextlib import aclosing

from gateway.config.schema import FilesConfig
from gateway.errors import ApiError, bad_request
from gateway.files.batch_input import BatchInput
from gateway.runtime import Runtime
from gateway.store import FileRecord, Store, StoreDown
from gateway.video.assets import PIECE, Asset, Assets, AssetWriter

log = logging.getLogger("gateway.files")

VARIANT = "content"
_ID = re.compile(r"file-[0-9a-f]{28}")
_SWEEP_EVERY_S = 60.0
_MB = 1024 * 1024


def new_id() -> tuple[str, int]:
    """(`file-` + milliseconds since the epoch (12 hex digits) + 64 random bits, the unix second it
    was made in): ids sort by creation, and created_at is the id's own second, so a list ordered by
    id is ordered by created_at, then id."""
    ms = time.time_ns() // 1_000_000
    return f"file-{ms:012x}{os.urandom(8).hex()}", ms // 1000


def is_file_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


class Files:
    def __init__(self, store: Store, assets: Assets, runtime: Callable[[], Runtime]) -> None:
        """`runtime()`: the config version in force now (limits are read at each upload)."""
        self.store = store
        self.assets = assets
        self.runtime = runtime
        self.clock: Callable[[], float] = time.time      # what "now" is for expiry (tests move it)
        self._tasks: list[asyncio.Task] = []

    def config(self) -> FilesConfig:
        return self.runtime().config.files

    def most_bytes(self) -> int:
        """The largest file an upload may send (`files.max_mb`)."""
        return int(self.config().max_mb * _MB)

    def max_line_bytes(self) -> int:
        """The longest line of batch input: a line becomes one request, so no more than a request's
        body may be (`server.max_body_mb`), nor than the file itself."""
        return min(self.runtime().max_body, self.most_bytes())

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._sweep_every(), name="files-expiry"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- making files --------------------------------------------------------------

    def begin(self, owner: str, purpose: str | None, most_bytes: int | None = None) -> NewFile:
        """A new file of `owner`'s (a key id), for `purpose`; None while it is not known yet (then
        the bytes are checked as batch input all the same, in case it is), at most `most_bytes`."""
        batch = None
        if purpose in (None, "batch"):
            batch = BatchInput(self.config().max_lines, self.max_line_bytes(), self.runtime().max_parse_ms)
        return NewFile(self, owner, batch, most_bytes)

    async def create(self, owner: str, purpose: str, filename: str, content: bytes | AsyncIterable[bytes],
                     expires_after_s: int | None = None) -> FileRecord:
        """A whole file made at once from `content` (bytes, or pieces as they come): a batch's output."""
        new = self.begin(owner, purpose)
        try:
            if isinstance(content, bytes):
                for at in range(0, len(content), PIECE):
                    new.write(content[at:at + PIECE])
                    await asyncio.sleep(0)      # a large one checked a piece a turn, not all in one
            else:
                async for piece in content:
                    new.write(piece)
            return await new.finish(purpose, filename, expires_after_s)
        finally:
            new.discard()

    def expires_at(self, purpose: str, created_at: int, expires_after_s: int | None) -> int | None:
        if expires_after_s is not None:
            return created_at + expires_after_s
        days = self.config().batch_expiry_days
        if purpose == "batch" and days > 0:
            return created_at + round(days * 86400)
        return None

    # -- reading them --------------------------------------------------------------

    async def find(self, owner: str, file_id: str) -> FileRecord | None:
        """`owner`'s file, unexpired; None for another key's (it does not exist for this one)."""
        if not is_file_id(file_id):
            return None
        record = await self.store.files.get(file_id)
        if record is None or record.owner != owner or record.expired(self.clock()):
            return None
        return record

    async def page(self, owner: str, purpose: str | None, after: str | None, limit: int,
                   order: str) -> tuple[list[FileRecord], bool]:
        return await self.store.files.page(owner, purpose, after, limit, order, self.clock())

    async def asset(self, record: FileRecord) -> Asset | None:
        """Where the file's bytes are (None when they are gone: deleted or swept meanwhile)."""
        return await asyncio.to_thread(self.assets.get, record.id, VARIANT)

    async def download_url(self, asset: Asset, record: FileRecord) -> str | None:
        """Where the client may fetch the bytes itself (a bucket's signed URL, with `downloads:
        redirect`), or None for the gateway to send them. In a thread: signing may fetch credentials."""
        return await asyncio.to_thread(self.assets.download_url, asset, record.id)

    async def pieces(self, asset: Asset, first: int = 0, last: int | None = None) -> AsyncGenerator[bytes, None]:
        """Bytes [first, last] of a file, PIECE at a time, each read in a thread (a bucket is a
        network call); OSError when they go meanwhile."""
        it = self.assets.pieces(asset, first, last)
        try:
            while piece := await asyncio.to_thread(next, it, b""):
                yield piece
        finally:
            await asyncio.to_thread(it.close)

    async def lines(self, record: FileRecord, max_line_bytes: int | None = None,
                    first: int = 0) -> AsyncGenerator[bytes, None]:
        """Every line of a file from byte `first` (the start of a line), without its newline, blank
        ones too, read a piece at a time. A line longer than `max_line_bytes` (default: batch input's
        cap, which a batch input file was checked against) raises ValueError; bytes gone raise OSError."""
        most = self.max_line_bytes() if max_line_bytes is None else max_line_bytes
        asset = await self.asset(record)
        if asset is None:
            raise FileNotFoundError(f"file {record.id} has no bytes")
        held = bytearray()
        async with aclosing(self.pieces(asset, first)) as pieces:
            async for piece in pieces:
                start = 0
                while (end := piece.find(b"\n", start)) >= 0:
                    if held:
                        held += piece[start:end]
                        line = bytes(held)
                        held.clear()
                    else:
                        line = piece[start:end]
                    if len(line) > most:
                        raise ValueError(f"file {record.id}: a line is longer than {most} bytes")
                    yield line
                    start = end + 1
                held += piece[start:]
                if len(held) > most:
                    raise ValueError(f"file {record.id}: a line is longer than {most} bytes")
        if held:
            yield bytes(held)

    # -- deleting them -------------------------------------------------------------

    async def delete(self, record: FileRecord) -> bool:
        """Its bytes, then its record (a failure in between leaves a record to delete again, never
        bytes no record leads to); whether the record was still there."""
        await asyncio.to_thread(self.assets.delete, record.id)
        return await self.store.files.delete(record.id)

    async def sweep(self) -> int:
        """Delete the files past `expires_at` (bytes, then records); how many."""
        gone = 0
        while ids := await self.store.files.expired(self.clock(), 100):
            for file_id in ids:
                await asyncio.to_thread(self.assets.delete, file_id)
                await self.store.files.delete(file_id)
                gone += 1
        return gone

    async def _sweep_every(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_EVERY_S)
            try:
                await self.sweep()
            except (StoreDown, OSError) as e:
                log.warning("files' expiry sweep skipped: %s", e)


class NewFile:
    """A file being made: its bytes go to the asset store's writer as they come, are counted
    against `most_bytes` (413 past it) and, where it may be batch input, checked line by line.
    `finish` stores it; `discard` (always safe to call) drops what was written."""

    def __init__(self, files: Files, owner: str, batch: BatchInput | None, most_bytes: int | None) -> None:
        self.id, self.created_at = new_id()
        self._files = files
        self._owner = owner
        self._batch = batch
        self._most = most_bytes
        self._writer: AssetWriter | None = files.assets.writer(self.id, VARIANT)

    @property
    def size(self) -> int:
        return 0 if self._writer is None else self._writer.size

    def write(self, data: bytes) -> None:
        assert self._writer is not None, "written after finish or discard"
        if self._most is not None and self._writer.size + len(data) > self._most:
            raise ApiError(413, f"The file is larger than this gateway takes ({self._most} bytes; files.max_mb).",
                           param="file", code="file_too_large")
        self._writer.write(data)
        if self._batch is not None:
            self._batch.feed(data)

    async def finish(self, purpose: str, filename: str, expires_after_s: int | None = None) -> FileRecord:
        """Check what the file must be, then store it: its bytes made visible, then its record;
        the 400 naming every problem of batch input (nothing kept), or what failed."""
        writer = self._writer
        assert writer is not None, "finished twice, or after discard"
        lines, endpoint = 0, ""
        if writer.size == 0:
            raise bad_request("'file' is empty.", param="file")
        if purpose == "batch":
            assert self._batch is not None, "a batch input file is begun as one (or with its purpose unknown)"
            self._batch.end()
            problem = self._batch.problem()
            if problem is not None:
                raise problem
            lines, endpoint = self._batch.requests, self._batch.endpoint or ""
        files = self._files
        record = FileRecord(self.id, self._owner, purpose, filename, writer.size, self.created_at,
                            files.expires_at(purpose, self.created_at, expires_after_s), lines, endpoint)
        self._writer = None     # the commit owns it now: `discard` must not touch it from here on
        # Shielded: a caller cancelled meanwhile does not leave bytes half kept without a record.
        return await asyncio.shield(_keep(files, writer, record))

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.discard()
            self._writer = None


async def _keep(files: Files, writer: AssetWriter, record: FileRecord) -> FileRecord:
    await asyncio.to_thread(writer.commit)     # on failure the writer leaves nothing behind itself
    try:
        await files.store.files.create(record)
    except BaseException:
        await asyncio.to_thread(files.assets.delete, record.id)
        raise
    return record
