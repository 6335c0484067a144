"""One real, small MP4 (and previews) that every fake video upstream serves:
rendered once per test session by the mock renderer."""
from __future__ import annotations

from functools import lru_cache

from providers.mock.video import Rendered, render


@lru_cache(maxsize=1)
def sample() -> Rendered:
    """1 s of 160x90 at 8 fps: a few kilobytes, decodable by PyAV."""
    return render("a fake upstream's video", 160, 90, 1.0)
