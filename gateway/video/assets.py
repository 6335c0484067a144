"""Where finished videos live: a small store of files by video id and variant
(`video`, `thumbnail`, `spritesheet`). Local directory by default; the
interface is small on purpose, so an S3-compatible store can follow.

Writes go to a temporary name first and are renamed into place, so a reader
never sees half a file, and a crash never leaves one behind under the real name.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

VARIANTS = {"video": ("mp4", "video/mp4"), "thumbnail": ("webp", "image/webp"),
            "spritesheet": ("jpg", "image/jpeg"),
            "reference": ("img", "application/octet-stream")}   # an input_reference image, kept for reruns
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Asset:
    path: Path
    size: int
    media_type: str


class LocalAssets:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _dir(self, video_id: str) -> Path:
        if not _ID.match(video_id):      # ids become paths: nothing that could climb out
            raise ValueError(f"not a video id: {video_id!r}")
        return self.root / video_id

    def put(self, video_id: str, variant: str, data: bytes) -> Asset:
        extension, media_type = VARIANTS[variant]
        folder = self._dir(video_id)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{variant}.{extension}"
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
        return Asset(final, len(data), media_type)

    def put_all(self, video_id: str, files: dict[str, bytes]) -> None:
        for variant, data in files.items():
            self.put(video_id, variant, data)

    def read_whole(self, video_id: str, variant: str) -> bytes | None:
        asset = self.get(video_id, variant)
        return None if asset is None else self.read(asset)

    def get(self, video_id: str, variant: str) -> Asset | None:
        extension, media_type = VARIANTS[variant]
        path = self._dir(video_id) / f"{variant}.{extension}"
        try:
            return Asset(path, path.stat().st_size, media_type)
        except FileNotFoundError:
            return None

    def read(self, asset: Asset, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end] inclusive (HTTP Range semantics); the whole file by default."""
        last = asset.size - 1 if end is None else min(end, asset.size - 1)
        with open(asset.path, "rb") as f:
            f.seek(start)
            return f.read(max(0, last - start + 1))

    def delete(self, video_id: str) -> bool:
        folder = self._dir(video_id)
        if not folder.exists():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True


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
