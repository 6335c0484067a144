"""Frames to a browser-friendly MP4: H.264 (MPEG-4 Part 2 where this PyAV has
no x264), yuv420p, a keyframe each second, and `+faststart` so playback can
begin while the file downloads. With the previews (thumbnail and
spritesheet) taken from the same frames as they pass. Blocking: call from a
thread, never on the event loop."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Literal

import av
import numpy as np
from PIL import Image

from providers.media.previews import spritesheet, tile_indices, tile_size, webp


def video_codec() -> Literal["libx264", "mpeg4"]:   # a literal: PyAV's stubs then know it adds a VideoStream
    """H.264 where this PyAV build can encode it; MPEG-4 Part 2 otherwise."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class Mp4Writer:
    """Write frames one at a time; `finish()` returns (mp4, thumbnail WebP, spritesheet JPEG).

    A frame is given as yuv420p planes (what a renderer that draws in YUV makes)
    or as RGB; `rgb` supplies the picture for previews, only for the frames
    the previews use."""

    def __init__(self, width: int, height: int, fps: int, frames: int) -> None:
        if width % 2 or height % 2:   # yuv420p halves both dimensions for colour
            raise ValueError(f"width and height must be even, got {width}x{height}")
        self.width, self.height, self.fps, self.frames = width, height, fps, frames
        self._tiles_at = tile_indices(frames)
        self._tile_size = tile_size(width, height)
        self._tiles: list[Image.Image] = []
        self._thumbnail = b""
        self._count = 0
        # +faststart makes the muxer rewrite the file with its index first, which
        # it does by reopening the output by name: so a real file, not a buffer.
        self._scratch = tempfile.TemporaryDirectory(prefix="gateway-video-")
        self._path = os.path.join(self._scratch.name, "video.mp4")
        self._container = av.open(self._path, mode="w", format="mp4", options={"movflags": "+faststart"})
        self._stream = _add_stream(self._container, width, height, fps)

    def wants_picture(self, i: int) -> bool:
        return i == self.frames // 2 or i in self._tiles_at

    def add(self, frame: av.VideoFrame, picture: Callable[[], np.ndarray] | None = None) -> None:
        i = self._count
        frame.pts = i
        frame.time_base = Fraction(1, self.fps)
        self._container.mux(self._stream.encode(frame))
        if picture is not None and self.wants_picture(i):
            image = Image.fromarray(picture())
            if i == self.frames // 2:
                self._thumbnail = webp(image)
            if i in self._tiles_at:
                self._tiles.append(image.resize(self._tile_size, Image.Resampling.BILINEAR))
        self._count += 1

    def add_yuv420p(self, planes: np.ndarray, picture: Callable[[], np.ndarray]) -> None:
        self.add(av.VideoFrame.from_ndarray(planes, format="yuv420p"), picture)

    def add_rgb(self, rgb: np.ndarray) -> None:
        self.add(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p"),
                 lambda: rgb)

    def finish(self) -> tuple[bytes, bytes, bytes]:
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
            with open(self._path, "rb") as written:
                mp4 = written.read()
        finally:
            self.close()
        return mp4, self._thumbnail, spritesheet(self._tiles, self._tile_size)

    def close(self) -> None:
        try:
            self._container.close()
        except Exception:   # already closed, or failed mid-write: nothing to keep
            pass
        self._scratch.cleanup()


def encode_rgb(frames: Iterable[np.ndarray], count: int, fps: int,
               on_frame: Callable[[int], None] | None = None) -> tuple[bytes, bytes, bytes]:
    """(mp4, thumbnail, spritesheet) of `count` RGB uint8 frames (height, width, 3)."""
    writer = None
    try:
        for i, rgb in enumerate(frames):
            if writer is None:
                writer = Mp4Writer(rgb.shape[1], rgb.shape[0], fps, count)
            writer.add_rgb(rgb)
            if on_frame is not None:
                on_frame(i + 1)
        if writer is None:
            raise ValueError("no frames to encode")
        return writer.finish()
    finally:
        if writer is not None:
            writer.close()


def _add_stream(container: av.container.OutputContainer, width: int, height: int, fps: int) -> av.VideoStream:
    codec = video_codec()
    stream = container.add_stream(codec, rate=fps)
    stream.width = width
    stream.height = height
    stream.pix_fmt = "yuv420p"
    stream.time_base = Fraction(1, fps)
    stream.codec_context.time_base = Fraction(1, fps)
    stream.codec_context.gop_size = fps   # a keyframe each second, so seeking is cheap
    if codec == "libx264":
        # mbtree off: with it on, x264 output varied run to run at some sizes
        # (720x1280, 96x54, ...), and the same input must give the same bytes.
        stream.options = {"preset": "veryfast", "crf": "26", "x264-params": "mbtree=0"}
    else:
        stream.options = {"qscale": "4"}
    return stream
