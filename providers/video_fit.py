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

A length past the backend's longest, on a backend that extends its own videos
(`extend` in its `video_ops`), is made in segments instead of stretched: a
first native length, then extensions of it, each another native length, to
the least total that reaches the request (then trimmed to it). At most
MAX_SEGMENTS: past that many of its longest, the rest is stretched.

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
MAX_SEGMENTS = 15         # a first segment and up to 14 extensions: 60 s of a backend whose longest is 4 s


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


def segments(seconds: int, choices: Iterable[int], most: int = MAX_SEGMENTS) -> tuple[int, ...]:
    """The native lengths to make `seconds` of, longest first: the least total at least `seconds`, in
    the fewest segments that make it. Past `most` segments of the longest, `most` of it (stretched)."""
    lengths = sorted({c for c in choices if c > 0}, reverse=True)
    if not lengths:
        return ()
    if lengths[0] * most < seconds:
        return (lengths[0],) * most
    # The least total is under `seconds` + the longest: were it not, one segment fewer would reach `seconds`.
    top = seconds + lengths[0]
    fewest = [0] + [most + 1] * top     # fewest[t]: the fewest segments that add up to t exactly
    last = [0] * (top + 1)              # and the length added last to make it
    for t in range(1, top + 1):
        for length in lengths:
            if length <= t and fewest[t - length] + 1 < fewest[t]:
                fewest[t], last[t] = fewest[t - length] + 1, length
    total = next(t for t in range(seconds, top + 1) if fewest[t] <= most)
    out = []
    while total:
        out.append(last[total])
        total -= last[total]
    return tuple(sorted(out, reverse=True))


@dataclass(frozen=True, slots=True)
class Plan:
    """What a backend generates for a request, and how the result is made to fit it."""
    width: int                 # generated
    height: int
    seconds: int               # generated (asked of the backend; extended: all its segments together)
    want_width: int            # delivered: the request's
    want_height: int
    want_seconds: int
    # Extended: the lengths generated, in order: the first segment, then each extension of it.
    segments: tuple[int, ...] = ()

    @property
    def rescaled(self) -> bool:
        return (self.width, self.height) != (self.want_width, self.want_height)

    @property
    def retimed(self) -> bool:
        return self.seconds != self.want_seconds

    @property
    def extended(self) -> bool:
        return len(self.segments) > 1

    @property
    def fitted(self) -> bool:
        return self.rescaled or self.retimed or self.extended

    def record(self) -> dict[str, Any]:
        """What a job keeps and shows (its `fit` field): what was generated and how it was fitted."""
        how = []
        if self.rescaled:
            how.append("scaled and cropped")
        if self.extended:
            how.append("extended")
        if self.seconds > self.want_seconds:
            how.append("trimmed")
        elif self.seconds < self.want_seconds:
            how.append("stretched")
        out: dict[str, Any] = {"generated_size": f"{self.width}x{self.height}", "generated_seconds": str(self.seconds),
                               "method": ", ".join(how) or "none"}
        if self.extended:
            out["segments"] = list(self.segments)
        return out

    @classmethod
    def of(cls, record: dict[str, Any], width: int, height: int, seconds: int) -> Plan:
        w, h = size_of(record["generated_size"])
        return cls(w, h, int(record["generated_seconds"]), width, height, seconds,
                   tuple(int(s) for s in record.get("segments", ())))


def native(width: int, height: int, seconds: int) -> Plan:
    return Plan(width, height, seconds, width, height, seconds)


def plan(fit: VideoFit, sizes: Iterable[str], durations: Iterable[str], width: int, height: int,
         seconds: int, *, extends: bool = False) -> Plan | None:
    """How a backend with these native sizes and lengths serves the request (None: it cannot).
    `extends`: the backend extends its own videos, so a length past its longest is made in segments."""
    sizes, durations = frozenset(sizes), frozenset(durations)
    size = f"{width}x{height}"
    if size in sizes and str(seconds) in durations:
        return native(width, height, seconds)
    if fit != "exact" or not sizes or not durations or bounds_problem(width, height) \
            or not 1 <= seconds <= MAX_SECONDS:
        return None
    w, h = size_of(size if size in sizes else nearest_size(width, height, sizes))
    lengths = [int(d) for d in durations]
    s = seconds if str(seconds) in durations else nearest_seconds(seconds, lengths)
    parts = segments(seconds, lengths) if extends and s < seconds else ()
    if len(parts) < 2:
        return Plan(w, h, s, width, height, seconds)
    return Plan(w, h, sum(parts), width, height, seconds, parts)
