"""The mock video provider's renderer: a real, short MP4 from a prompt, on CPU.

A moving colour field whose palette and motion come from a hash of (prompt,
seed): same inputs, same video; another prompt, another video. Pure: no HTTP,
no gateway state. Frames are built with numpy straight into yuv420p planes
(a palette lookup per plane), so no per-pixel colour conversion is needed.
"""
from __future__ import annotations

import colorsys
import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from providers.media.encode import Mp4Writer


@dataclass(frozen=True)
class Rendered:
    mp4: bytes
    thumbnail_webp: bytes
    spritesheet_jpeg: bytes
    frames: int
    width: int
    height: int
    seconds: float   # frames / fps: what the MP4 decodes back as


def render(prompt: str, width: int, height: int, seconds: float, fps: int = 8,
           seed: int | None = None,
           on_progress: Callable[[int], None] | None = None) -> Rendered:
    """Render `round(seconds * fps)` frames of `width`x`height` into an MP4,
    plus a WebP thumbnail (the middle frame) and a JPEG spritesheet.

    `on_progress` gets 0 first, then rising percentages as frames are
    encoded, and 100 once every asset is ready."""
    frames = _check(width, height, seconds, fps)
    report = _Progress(on_progress)
    field = _Field(_look(prompt, seed), width, height)
    writer = Mp4Writer(width, height, fps, frames)
    try:
        for i in range(frames):
            index = field.index_at(i / fps)
            writer.add_yuv420p(field.yuv420p(index), partial(field.rgb, index))
            report(99 * (i + 1) // frames)   # 100 is kept for "every asset written"
        mp4, thumbnail, spritesheet = writer.finish()
    finally:
        writer.close()
    report(100)
    return Rendered(mp4=mp4, thumbnail_webp=thumbnail, spritesheet_jpeg=spritesheet,
                    frames=frames, width=width, height=height, seconds=frames / fps)


def _check(width: int, height: int, seconds: float, fps: int) -> int:
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {width}x{height}")
    if width % 2 or height % 2:   # yuv420p halves both dimensions for colour
        raise ValueError(f"width and height must be even, got {width}x{height}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    frames = round(seconds * fps)
    if frames < 1:
        raise ValueError(f"{seconds} s at {fps} fps is less than one frame")
    return frames


class _Progress:
    """Forwards only rising values, so a listener sees 0..100 monotonic."""

    def __init__(self, listener: Callable[[int], None] | None) -> None:
        self._listener = listener
        self._last = -1
        self(0)

    def __call__(self, percent: int) -> None:
        if self._listener is not None and percent > self._last:
            self._last = percent
            self._listener(percent)


@dataclass(frozen=True)
class _Look:
    """Everything the hash decides: palette and motion."""
    palette_rgb: np.ndarray    # (256, 3) uint8, cyclic so index wrap-around is smooth
    palette_yuv: np.ndarray    # (256, 3) uint8, BT.601 limited range
    palette_speed: float       # palette entries per second (the hues drift)
    contrast: float            # palette entries per unit of field value
    waves: tuple[tuple[float, float, float], ...]   # (spatial freq, angle, phase speed)
    ripple: tuple[float, float, float, float]       # (centre x, centre y, freq, speed)


def _look(prompt: str, seed: int | None) -> _Look:
    key = f"{'-' if seed is None else seed}\0{prompt}".encode("utf-8", "surrogatepass")
    rng = random.Random(hashlib.blake2b(key, digest_size=32).digest())
    base_hue, spread = rng.random(), rng.uniform(0.12, 0.5)
    sat_phase, val_phase = rng.uniform(0, math.tau), rng.uniform(0, math.tau)
    rgb = []
    for k in range(256):   # 256 entries once per render, not per pixel
        phase = math.tau * k / 256
        hue = (base_hue + spread * math.sin(phase)) % 1.0
        saturation = 0.55 + 0.4 * (0.5 + 0.5 * math.cos(phase + sat_phase))
        value = 0.55 + 0.4 * (0.5 + 0.5 * math.sin(2 * phase + val_phase))
        rgb.append(colorsys.hsv_to_rgb(hue, saturation, value))
    palette = np.asarray(rgb, dtype=np.float64)
    waves = tuple((rng.uniform(0.6, 3.0), rng.uniform(0, math.pi), rng.choice((-1, 1)) * rng.uniform(0.8, 3.0))
                  for _ in range(3))
    ripple = (rng.uniform(-0.6, 0.6), rng.uniform(-0.4, 0.4), rng.uniform(2.0, 6.0),
              rng.choice((-1, 1)) * rng.uniform(1.5, 4.0))
    return _Look(palette_rgb=np.round(palette * 255).astype(np.uint8),
                 palette_yuv=_bt601(palette),
                 palette_speed=rng.choice((-1, 1)) * rng.uniform(8, 40),
                 contrast=rng.uniform(18, 40),
                 waves=waves, ripple=ripple)


def _bt601(rgb: np.ndarray) -> np.ndarray:
    """RGB in 0..1 -> limited-range Y'CbCr, what players assume of untagged yuv420p."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return np.clip(np.round(np.stack([y, u, v], axis=1)), 0, 255).astype(np.uint8)


class _Field:
    """A sum of travelling waves and a ripple, mapped through a drifting palette.

    Each plane wave is separable in x and y (sin(a+b) = sin a cos b + cos a sin b),
    so a frame costs a few outer products and one full-size sine."""

    def __init__(self, look: _Look, width: int, height: int) -> None:
        self.look, self.width, self.height = look, width, height
        # Coordinates in radians per picture height, so patterns keep their shape at any aspect.
        self._x = ((np.arange(width, dtype=np.float32) - width / 2) / height * math.tau)
        self._y = ((np.arange(height, dtype=np.float32) - height / 2) / height * math.tau)
        cx, cy, _, _ = look.ripple
        dx = self._x - np.float32(cx * math.tau)
        dy = self._y - np.float32(cy * math.tau)
        self._radius = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)
        self._buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)

    def index_at(self, t: float) -> np.ndarray:
        """The palette index of every pixel at time `t` seconds, (height, width) uint8."""
        _, _, freq, speed = self.look.ripple
        value = np.sin(self._radius * np.float32(freq) - np.float32(speed * t))
        for spatial, angle, phase_speed in self.look.waves:
            along_x = self._x * np.float32(spatial * math.cos(angle)) + np.float32(phase_speed * t)
            along_y = self._y * np.float32(spatial * math.sin(angle))
            value += np.sin(along_y)[:, None] * np.cos(along_x)[None, :]
            value += np.cos(along_y)[:, None] * np.sin(along_x)[None, :]
        value *= np.float32(self.look.contrast)
        value += np.float32(self.look.palette_speed * t)
        # int32 then & 255: a wrap-around modulo that negative values survive
        return (value.astype(np.int32) & 255).astype(np.uint8)

    def yuv420p(self, index: np.ndarray) -> np.ndarray:
        """Planar Y, U, V stacked as PyAV's from_ndarray expects: (height * 3/2, width)."""
        h, w = self.height, self.width
        palette = self.look.palette_yuv
        out = self._buffer
        np.take(palette[:, 0], index, out=out[:h])
        chroma = index[::2, ::2]   # 4:2:0: one colour sample per 2x2 block
        flat = out.reshape(-1)
        quarter = (h // 2) * (w // 2)
        flat[h * w:h * w + quarter] = np.take(palette[:, 1], chroma).reshape(-1)
        flat[h * w + quarter:] = np.take(palette[:, 2], chroma).reshape(-1)
        return out

    def rgb(self, index: np.ndarray) -> np.ndarray:
        return np.take(self.look.palette_rgb, index, axis=0)
