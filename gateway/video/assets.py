"""Where finished videos live: a small store of files by video id and variant
(`video`, `thumbnail`, `spritesheet`, and a job's `reference` image), and the
files of /v1/files too (by file id, variant `content`: gateway/files/). Two
stores share the interface below: `LocalAssets`, a folder (here), and
`S3Assets`, an S3-compatible bucket (assets_s3.py). Callers run their calls in
threads (`asyncio.to_thread`): both are synchronous.

A put never leaves half a file visible under its name: the folder writes to a
temporary name and renames it into place; S3 makes an object visible only
once its upload is whole. A file too large to hold is put piece by piece
(`writer`) and read back piece by piece (`pieces`).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

VARIANTS = {"video": ("mp4", "video/mp4"), "thumbnail": ("webp", "image/webp"),
            "spritesheet": ("jpg", "image/jpeg"),
            "reference": ("img", "application/octet-stream"),   # an input_reference image, kept for reruns
            # an image request handed to a worker, and its answer (gateway/images/workers.py)
            "request": ("json", "application/json"), "answer": ("json", "application/json"),
            "content": ("bin", "application/octet-stream")}     # a file of /v1/files, as it was sent
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
PIECE = 1024 * 1024         # what `pieces` reads at a time


@dataclass(frozen=True, slots=True)
class Asset:
    location: str        # a file's path, or an object's key
    size: int
    media_type: str


def folder_of(video_id: str) -> str:
    """The name under which a video's files are kept (a folder, or a key prefix without its slash)."""
    if not _ID.match(video_id):      # ids become paths and keys: nothing that could climb out or run into another
        raise ValueError(f"not a video id: {video_id!r}")
    return video_id


def file_name(variant: str) -> str:
    return f"{variant}.{VARIANTS[variant][0]}"


class AssetWriter(Protocol):
    """A file being put piece by piece: `write` appends to a local file (a piece's write to the
    page cache: short enough for the event loop), `commit` makes it visible whole under its name
    (blocking: run it in a thread), `discard` drops it and leaves nothing behind. Once committed
    or discarded, `discard` does nothing."""
    size: int

    def write(self, data: bytes) -> None: ...
    def commit(self) -> Asset: ...
    def discard(self) -> None: ...


class Assets(Protocol):
    """What the runner, the submit path, the download endpoints and /v1/files need of a store."""

    def put(self, video_id: str, variant: str, data: bytes) -> Asset: ...
    def put_all(self, video_id: str, files: dict[str, bytes]) -> None: ...
    def writer(self, video_id: str, variant: str) -> AssetWriter: ...
    def get(self, video_id: str, variant: str) -> Asset | None: ...
    def read(self, asset: Asset, start: int = 0, end: int | None = None) -> bytes: ...

    def pieces(self, asset: Asset, start: int = 0, end: int | None = None) -> Generator[bytes, None, None]:
        """Bytes [start, end] inclusive (the whole file by default), PIECE bytes at a time, each read
        when asked for: a caller on the event loop takes each `next` in a thread, and closes the
        iterator (in a thread too) if it stops early. A file gone meanwhile raises OSError."""
        ...

    def read_whole(self, video_id: str, variant: str) -> bytes | None: ...
    def delete(self, video_id: str) -> bool: ...

    def download_url(self, asset: Asset, filename: str) -> str | None:
        """Where a client may fetch the file itself (the answer is a 302 there), or None
        for the gateway to send it."""
        ...


class LocalAssets:
    """Files in a folder, `<root>/<video_id>/<variant>.<ext>`; replicas share it as a common volume."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _dir(self, video_id: str) -> Path:
        return self.root / folder_of(video_id)

    def put(self, video_id: str, variant: str, data: bytes) -> Asset:
        folder = self._dir(video_id)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / file_name(variant)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{variant}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Asset(str(final), len(data), VARIANTS[variant][1])

    def put_all(self, video_id: str, files: dict[str, bytes]) -> None:
        for variant, data in files.items():
            self.put(video_id, variant, data)

    def writer(self, video_id: str, variant: str) -> AssetWriter:
        return _FolderWriter(self._dir(video_id), variant)

    def read_whole(self, video_id: str, variant: str) -> bytes | None:
        asset = self.get(video_id, variant)
        return None if asset is None else self.read(asset)

    def get(self, video_id: str, variant: str) -> Asset | None:
        path = self._dir(video_id) / file_name(variant)
        try:
            return Asset(str(path), path.stat().st_size, VARIANTS[variant][1])
        except FileNotFoundError:
            return None

    def read(self, asset: Asset, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end] inclusive (HTTP Range semantics); the whole file by default."""
        last = asset.size - 1 if end is None else min(end, asset.size - 1)
        with open(asset.location, "rb") as f:
            f.seek(start)
            return f.read(max(0, last - start + 1))

    def pieces(self, asset: Asset, start: int = 0, end: int | None = None) -> Generator[bytes, None, None]:
        last = asset.size - 1 if end is None else min(end, asset.size - 1)
        with open(asset.location, "rb") as f:
            f.seek(start)
            left = last - start + 1
            while left > 0:
                piece = f.read(min(PIECE, left))
                if not piece:
                    raise OSError(f"{asset.location} ended {left} bytes early")
                left -= len(piece)
                yield piece

    def delete(self, video_id: str) -> bool:
        folder = self._dir(video_id)
        if not folder.exists():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def download_url(self, asset: Asset, filename: str) -> str | None:
        return None          # a folder has no URL of its own: the gateway sends the file


class _FolderWriter:
    """A file written under a temporary name in its folder and renamed into place when committed."""

    def __init__(self, folder: Path, variant: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder, self._variant = folder, variant
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{variant}.")
        self._fd: int | None = fd
        self._tmp = Path(tmp)
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "written after commit or discard"
        view = memoryview(data)
        while view:     # a write may take part of it
            view = view[os.write(self._fd, view):]
        self.size += len(data)

    def commit(self) -> Asset:
        assert self._fd is not None, "committed twice, or after discard"
        fd, self._fd = self._fd, None
        final = self._folder / file_name(self._variant)
        try:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._tmp, final)
        except BaseException:
            self._remove()
            raise
        return Asset(str(final), self.size, VARIANTS[self._variant][1])

    def discard(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        self._remove()

    def _remove(self) -> None:
        self._tmp.unlink(missing_ok=True)
        try:    # the folder goes too when nothing else is in it (a new file's own)
            self._folder.rmdir()
        except OSError:
            pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The byte span an HTTP `Range: bytes=...` header asks for, as (first, last)
    inclusive; None for the whole file. Raises ValueError when it cannot be
    satisfied (the caller answers 416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None                       # other units, multiple ranges: the whole file (allowed by RFC 9110)
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":              # suffix: the last N bytes
            n = int(last_text)
            if n <= 0:
                raise ValueError("empty suffix range")
            return max(0, size - n), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        raise ValueError(f"unsatisfiable range: {header}") from None
    if first >= size or last < first:
        raise ValueError(f"unsatisfiable range: {header}")
    return first, min(last, size - 1)
