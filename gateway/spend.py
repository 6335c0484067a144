"""What a request costs, in nano-USD (integers, so totals add up exactly), and
the budget periods it counts against."""
from __future__ import annotations

import datetime as dt
import time
from functools import lru_cache

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


_DAY_S = 86400
_today: tuple[int, str] = (-1, "")


def today() -> str:
    """The UTC date, YYYY-MM-DD; formatted once a day, not once a request."""
    global _today
    number = int(time.time() // _DAY_S)
    if number != _today[0]:
        _today = (number, time.strftime("%Y-%m-%d", time.gmtime(number * _DAY_S)))
    return _today[1]


def period(budget: Budget, now: dt.datetime | None = None) -> tuple[str, str]:
    """First and last day (UTC, inclusive) of the budget's current period."""
    if now is None:
        return _period(budget.period, today())
    return _period(budget.period, now.date().isoformat())


@lru_cache(maxsize=64)
def _period(kind: str, day_text: str) -> tuple[str, str]:
    day = dt.date.fromisoformat(day_text)
    if kind == "day":
        start = end = day
    elif kind == "week":             # ISO weeks, Monday first
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=6)
    elif kind == "month":
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    else:                                      # total
        return "0000-01-01", "9999-12-31"
    return start.isoformat(), end.isoformat()
