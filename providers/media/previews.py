"""The `thumbnail` (WebP, the middle frame) and `spritesheet` (JPEG, up to
10x10 small frames from first to last) variants of a video: made while
rendering (mock, local GPUs) or afterwards from an MP4 a hosted provider sent.
Blocking (decoding): call from a thread."""
from __future__ import annotations

import io
import math

import av
from PIL import Image

SPRITE_TILE_WIDTH = 160   # as OpenAI's spritesheet variant: small tiles, 10 to a row
SPRITE_GRID = 10          # at most 10x10 tiles
THUMBNAIL_QUALITY = 80
SPRITESHEET_QUALITY = 80


def tile_indices(frames: int) -> set[int]:
    """Up to 10x10 frames, evenly spaced from first to last."""
    count = min(frames, SPRITE_GRID * SPRITE_GRID)
    if count == 1:
        return {0}
    return {round(k * (frames - 1) / (count - 1)) for k in range(count)}


def tile_size(width: int, height: int) -> tuple[int, int]:
    tile_width = min(SPRITE_TILE_WIDTH, width)
    return tile_width, max(1, round(tile_width * height / width))


def spritesheet(tiles: list[Image.Image], size: tuple[int, int]) -> bytes:
    columns = min(len(tiles), SPRITE_GRID)
    rows = math.ceil(len(tiles) / columns)
    tile_width, tile_height = size
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height))
    for n, tile in enumerate(tiles):
        sheet.paste(tile, ((n % columns) * tile_width, (n // columns) * tile_height))
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=SPRITESHEET_QUALITY)
    return out.getvalue()


def webp(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="WEBP", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def from_mp4(mp4: bytes) -> tuple[bytes, bytes]:
    """(thumbnail WebP, spritesheet JPEG) of a video file; ValueError if it does not decode."""
    try:
        with av.open(io.BytesIO(mp4), "r") as container:   # "r" (the default) picks the stubs' InputContainer
            stream = container.streams.video[0]
            total = stream.frames or _estimated_frames(stream)
            wanted = tile_indices(total) if total else None
            middle = total // 2 if total else None
            tiles: list[Image.Image] = []
            thumbnail: Image.Image | None = None
            size: tuple[int, int] | None = None
            for i, frame in enumerate(container.decode(stream)):
                if size is None:
                    size = tile_size(frame.width, frame.height)
                if i == middle or (middle is None and i == 0):
                    thumbnail = frame.to_image()
                if wanted is None or i in wanted:
                    tiles.append(frame.to_image().resize(size, Image.Resampling.BILINEAR))
    except (av.error.FFmpegError, IndexError) as e:
        raise ValueError(f"the video does not decode: {e}") from None
    if not tiles or size is None:
        raise ValueError("the video has no frames")
    if wanted is None and len(tiles) > SPRITE_GRID * SPRITE_GRID:
        keep = tile_indices(len(tiles))
        tiles = [t for i, t in enumerate(tiles) if i in keep]
    return webp(thumbnail or tiles[len(tiles) // 2]), spritesheet(tiles, size)


def _estimated_frames(stream) -> int:
    if stream.duration is None or stream.time_base is None or not stream.average_rate:
        return 0
    return max(1, round(float(stream.duration * stream.time_base * stream.average_rate)))
