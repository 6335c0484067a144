"""Fitting a video request to what a backend makes (`video_fit: exact`, the default).

A backend makes a few sizes and lengths (its native ones: `video_sizes` and
`video_seconds`, or its family's). Any other request within the bounds below
is still served: the backend generates at its native size nearest in shape
(aspect ratio first, then area) and its nearest length, and the gateway then

- scales the frames to cover the requested size and crops the middle, so the
  MP4 has exactly the width and height asked for;
- trims a longer video to the requested length, or stretches a shorter one to
  it (each new frame a blend of the two nearest; a slower motion, the same
  frame rate).

`video_fit: native` keeps a backend to its native sizes and lengths: anything
else is a 400 that lists them. Pure: no I/O, no PyAV (providers/media/fit.py
does the frames)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

VideoFit = Literal["exact", "native"]

MIN_SIDE = 64             # pixels, each side (an H.264 frame of yuv420p needs even sides)
MAX_SIDE = 1920
MAX_PIXELS = 1920 * 1080  # the largest frame a request may ask for (1792x1024 and 1024x1792 are within)
MAX_SECONDS = 60


def bounds_problem(width: int, height: int) -> str | None:
    """Why a requested size is outside what any fitted backend serves, or None."""
    if width % 2 or height % 2:
        return "width and height must be even numbers"
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        return f"each side must be from {MIN_SIDE} to {MAX_SIDE} pixels"
    if width * height > MAX_PIXELS:
        return "at most 1920x1080 pixels (2,073,600) a frame"
    return None


def size_of(size: str) -> tuple[int, int]:
    w, _, h = size.partition("x")
    return int(w), int(h)


SAME_SHAPE = math.log(1.05)    # aspect ratios this close are one shape: a crop loses at most 5% of a side


def nearest_size(width: int, height: int, sizes: Iterable[str]) -> str:
    """The native size nearest to width x height: of those of about the same shape (aspect
    ratio within 5%), the closest in area; with none, the closest in shape."""
    def shape(size: str) -> float:
        w, h = size_of(size)
        return abs(math.log((w / h) / (width / height)))

    def area(size: str) -> float:
        w, h = size_of(size)
        return abs(math.log((w * h) / (width * height)))
    ordered = sorted(sizes)
    alike = [s for s in ordered if shape(s) <= SAME_SHAPE]
    return min(alike, key=area) if alike else min(ordered, key=shape)


def nearest_seconds(seconds: int, choices: Iterable[int]) -> int:
    """The shortest native length at least `seconds` long (trimmed to it), else the longest (stretched)."""
    ordered = sorted(choices)
    return next((s for s in ordered if s >= seconds), ordered[-1])


@dataclass(frozen=True, slots=True)
class Plan:
    """What a backend generates for a request, and how the result is made to fit it."""
    width: int                 # generated
    height: int
    seconds: int               # generated (asked of the backend)
    want_width: int            # delivered: the request's
    want_height: int
    want_seconds: int

    @property
    def rescaled(self) -> bool:
        return (self.width, self.height) != (self.want_width, self.want_height)

    @property
    def retimed(self) -> bool:
        return self.seconds != self.want_seconds

    @property
    def fitted(self) -> bool:
        return self.rescaled or self.retimed

    def record(self) -> dict[str, Any]:
        """What a job keeps and shows (its `fit` field): what was generated and how it was fitted."""
        how = []
        if self.rescaled:
            how.append("scaled and cropped")
        if self.seconds > self.want_seconds:
            how.append("trimmed")
        elif self.seconds < self.want_seconds:
            how.append("stretched")
        return {"generated_size": f"{self.width}x{self.height}", "generated_seconds": str(self.seconds),
                "method": ", ".join(how) or "none"}

    @classmethod
    def of(cls, record: dict[str, Any], width: int, height: int, seconds: int) -> Plan:
        w, h = size_of(record["generated_size"])
        return cls(w, h, int(record["generated_seconds"]), width, height, seconds)


def native(width: int, height: int, seconds: int) -> Plan:
    return Plan(width, height, seconds, width, height, seconds)


def plan(fit: VideoFit, sizes: Iterable[str], durations: Iterable[str], width: int, height: int,
         seconds: int) -> Plan | None:
    """How a backend with these native sizes and lengths serves the request (None: it cannot)."""
    sizes, durations = frozenset(sizes), frozenset(durations)
    size = f"{width}x{height}"
    if size in sizes and str(seconds) in durations:
        return native(width, height, seconds)
    if fit != "exact" or not sizes or not durations or bounds_problem(width, height) \
            or not 1 <= seconds <= MAX_SECONDS:
        return None
    w, h = size_of(size if size in sizes else nearest_size(width, height, sizes))
    s = seconds if str(seconds) in durations else nearest_seconds(seconds, (int(d) for d in durations))
    return Plan(w, h, s, width, height, seconds)
