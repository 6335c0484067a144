"""What audio costs: speech by the characters it speaks (a price's `per_mchar`),
transcriptions and translations by the seconds of audio they hear (`per_second`),
each on top of the tokens a backend counts."""
from __future__ import annotations

from gateway.config.schema import Price
from gateway.spend import NANO


def speech_cost_nano(price: Price | None, characters: int) -> int:
    if price is None or characters <= 0:
        return 0
    return round(price.per_mchar * characters * NANO / 1_000_000)


def heard_cost_nano(price: Price | None, seconds: float) -> int:
    if price is None or seconds <= 0:
        return 0
    return round(price.per_second * seconds * NANO)
