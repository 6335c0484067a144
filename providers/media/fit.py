"""Frames made to fit a request (providers/video_fit.py decides the plan): scaled
to cover the requested size and centre-cropped, then trimmed or stretched to the
requested number of frames. Frames stream through one at a time (a minute of
1080p would not fit in memory whole). Blocking: call from a thread."""
from __future__ import annotations

import io
import math
from collections.abc import Iterable, Iterator

import av
import numpy as np
from PIL import Image

from providers.media.encode import encode_rgb


def covered(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """`rgb` (height, width, 3) scaled to cover width x height, the middle of it kept."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    scale = max(width / w, height / h)
    sw, sh = max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale))
    image = Image.fromarray(rgb).resize((sw, sh), Image.Resampling.BICUBIC)
    left, top = (sw - width) // 2, (sh - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)))


def retimed(frames: Iterable[np.ndarray], count: int, want: int) -> Iterator[np.ndarray]:
    """`count` frames as `want`: the first `want` when there are more (trimmed), else
    spread over the same span, each new frame a blend of its two nearest (stretched)."""
    if want <= count:
        for i, frame in enumerate(frames):
            if i >= want:
                return
            yield frame
        return
    it = iter(frames)
    a = next(it)
    b = next(it, a)
    at = 0                                  # the index of `a`
    for j in range(want):
        p = j * (count - 1) / (want - 1) if want > 1 else 0.0
        while at < int(p):
            a, b, at = b, next(it, b), at + 1
        f = p - at
        if f < 1e-3:
            yield a
        elif f > 1 - 1e-3:
            yield b
        else:
            yield (a.astype(np.float32) * (1 - f) + b.astype(np.float32) * f + 0.5).astype(np.uint8)


def fitted(frames: Iterable[np.ndarray], count: int, width: int, height: int, want: int) -> Iterator[np.ndarray]:
    return retimed((covered(f, width, height) for f in frames), count, want)


# What a backend's video may be, to be fitted: past these it is refused, not decoded (a
# hostile or broken upstream must not make the gateway hold gigabytes of frames).
MOST_SIDE = 4096
MOST_FPS = 120
MOST_FRAMES = 120 * 60 * 2


def refit_mp4(mp4: bytes, width: int, height: int, seconds: float) -> tuple[bytes, bytes, bytes]:
    """A backend's MP4 made `width` x `height` and `seconds` long at its own frame rate:
    (mp4, thumbnail, spritesheet). ValueError if it cannot be decoded, or is past the bounds above."""
    try:
        with av.open(io.BytesIO(mp4), "r") as container:
            stream = container.streams.video[0]
            fps = max(1, round(float(stream.average_rate or stream.guessed_rate or 24)))
            w, h = stream.codec_context.width, stream.codec_context.height
            if not (0 < w <= MOST_SIDE and 0 < h <= MOST_SIDE) or fps > MOST_FPS:
                raise ValueError(f"it is {w}x{h} at {fps} fps (at most {MOST_SIDE} a side and {MOST_FPS} fps)")
            count = 0
            for packet in container.demux(stream):
                count += packet.size > 0
                if count > MOST_FRAMES:
                    raise ValueError(f"it has more than {MOST_FRAMES} frames")
        if count == 0:
            raise ValueError("the video has no frames")
        want = max(1, round(seconds * fps))
        with av.open(io.BytesIO(mp4), "r") as container:
            frames = (f.to_ndarray(format="rgb24") for f in container.decode(video=0))
            return encode_rgb(fitted(frames, count, width, height, want), want, fps)
    except (av.FFmpegError, IndexError, StopIteration) as e:
        raise ValueError(f"the video could not be read: {type(e).__name__}") from None
