"""What a request costs, in nano-USD (integers, so totals add up exactly), and
the budget periods it counts against."""
from __future__ import annotations

import datetime as dt

from gateway.config.schema import Budget, Price
from providers.base import Usage

NANO = 1_000_000_000
_PER_TOKEN = NANO / 1_000_000        # a price per million tokens, in nano-USD per token


def cost_nano(price: Price | None, usage: Usage | None, *, seconds: float = 0.0) -> int:
    """Tokens (cached ones at the cached price), seconds and per-request fees; an
    unknown price costs 0."""
    if price is None:
        return 0
    total = price.per_request * NANO + seconds * price.per_second * NANO
    if usage is not None:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
        total += ((usage.prompt_tokens - cached) * price.input_per_mtok + cached * cached_price
                  + usage.completion_tokens * price.output_per_mtok) * _PER_TOKEN
    return round(total)


def usd(nano: int) -> str:
    return f"{nano / NANO:.9f}".rstrip("0").rstrip(".") or "0"


def today(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d")


def period(budget: Budget, now: dt.datetime | None = None) -> tuple[str, str]:
    """First and last day (UTC, inclusive) of the budget's current period."""
    day = (now or dt.datetime.now(dt.timezone.utc)).date()
    if budget.period == "day":
        start = end = day
    elif budget.period == "week":             # ISO weeks, Monday first
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=6)
    elif budget.period == "month":
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    else:                                      # total
        return "0000-01-01", "9999-12-31"
    return start.isoformat(), end.isoformat()
