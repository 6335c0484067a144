"""Where finished videos live: a small store of files by video id and variant
(`video`, `thumbnail`, `spritesheet`, and a job's `reference` image). Two
stores share the interface below: `LocalAssets`, a folder (here), and
`S3Assets`, an S3-compatible bucket (assets_s3.py). Callers run their calls in
threads (`asyncio.to_thread`): both are synchronous.

A put never leaves half a file visible under its name: the folder writes to a
temporary name and renames it into place; S3 makes an object visible only
once its upload is whole.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

VARIANTS = {"video": ("mp4", "video/mp4"), "thumbnail": ("webp", "image/webp"),
            "spritesheet": ("jpg", "image/jpeg"),
            "reference": ("img", "application/octet-stream"),   # an input_reference image, kept for reruns
            # an image request handed to a worker, and its answer (gateway/images/workers.py)
            "request": ("json", "application/json"), "answer": ("json", "application/json")}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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


class Assets(Protocol):
    """What the runner, the submit path and the download endpoint need of a store."""

    def put(self, video_id: str, variant: str, data: bytes) -> Asset: ...
    def put_all(self, video_id: str, files: dict[str, bytes]) -> None: ...
    def get(self, video_id: str, variant: str) -> Asset | None: ...
    def read(self, asset: Asset, start: int = 0, end: int | None = None) -> bytes: ...
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

    def delete(self, video_id: str) -> bool:
        folder = self._dir(video_id)
        if not folder.exists():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def download_url(self, asset: Asset, filename: str) -> str | None:
        return None          # a folder has no URL of its own: the gateway sends the file


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
