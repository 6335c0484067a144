"""What images cost: a price's `per_image`, one figure or by quality and size."""
from __future__ import annotations

from gateway.config.schema import Price
from gateway.spend import NANO


def per_image_usd(price: Price, quality: str | None, size: str | None) -> float:
    """The most specific of `quality/size`, `size`, `quality`, `default` in a table; a figure as it is."""
    table = price.per_image
    if not isinstance(table, dict):
        return table
    for key in (f"{quality}/{size}", size, quality, "default"):
        if key is not None and key in table:
            return table[key]
    return 0.0


def image_cost_nano(price: Price | None, count: int, quality: str | None, size: str | None) -> int:
    if price is None or count <= 0:
        return 0
    return round(per_image_usd(price, quality, size) * count * NANO)
