"""Limits of the Redis store: any number of gateway replicas share windows,
leases and budgets through one Redis.

On the request path it costs one round trip before the answer (`admit`: one
EVALSHA that checks and charges every limit atomically) and one after
(`settle`: one EVALSHA, which also writes the ledger row). The scripts and the
key layout are in limits_lua.py.

Windows and leases count by Redis's clock, not the caller's (`Admission.now` is
not used): replicas with skewed clocks agree. `Verdict.at` says which instant
was charged, so settling corrects that bucket.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from gateway.store.ledger import LEDGER_FIELDS
from gateway.store.limits import Admission, Limits, Settlement, Verdict, budget_span
from gateway.store.redis.base import Pool, Script, talking
from gateway.store.redis.ledger import row_field
from gateway.store.redis.limits_lua import ADMIT, SETTLE
from gateway.store.windows import bucket_of

_REFUSED_BY = {-1: "concurrent", -2: "budget"}
_GRACE_DAYS = 7     # a budget period is kept this long after it ends, for requests still settling


class RedisLimits(Limits):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._p = pool.prefix
        self._admit = Script(ADMIT)
        self._settle = Script(SETTLE)

    async def load(self) -> None:
        """Load the scripts now rather than on the first request."""
        for script in (self._admit, self._settle):
            await self._pool.load(script)

    async def admit(self, a: Admission) -> Verdict:
        p = self._p
        keys = [p + win.key for win in a.windows]
        args: list[Any] = [len(a.windows), int(a.lease is not None), int(a.hold is not None)]
        for win in a.windows:
            args += (win.limit, win.window_s, win.amount)
        if a.lease is not None:
            keys.append(p + a.lease.key)
            args += (a.lease.limit, a.lease.id, math.ceil(a.lease.ttl_s * 1000))
        if a.hold is not None:
            key, day_from, day_to = budget_span(a.hold.key)
            keys += (p + a.hold.key, p + "cost:" + key)
            args += (a.hold.limit, a.hold.amount, day_from, day_to, _expire_at(day_to))
        reply = await self._pool.run(self._admit, keys, args)
        allowed, refused, retry_after, sec, usec = reply[:5]
        at = int(sec) + int(usec) / 1_000_000     # as the script computed it, so the buckets agree
        if not allowed:
            by = _REFUSED_BY.get(refused) or a.windows[refused - 1].family
            return Verdict(False, by, float(retry_after), at=at)
        per_window = reply[5:]
        return Verdict(True, remaining=[int(r) for r in per_window[0::2]],
                       reset_s=[float(r) for r in per_window[1::2]], at=at)

    async def settle(self, s: Settlement) -> None:
        p = self._p
        keys: list[str] = []
        args: list[Any] = [len(s.corrections), int(s.lease is not None), int(s.hold is not None),
                           int(s.entry is not None)]
        for win, at, delta in s.corrections:
            keys.append(p + win.key)
            args += (bucket_of(at, win.window_s), delta)
        if s.lease is not None:
            keys.append(p + s.lease.key)
            args.append(s.lease.id)
        if s.hold is not None:
            keys.append(p + s.hold.key)
            args += (-s.hold.amount, s.spent_nano)
        if s.entry is not None:
            e = s.entry
            keys += (p + "spend:" + e.day, p + "spend:days", p + "cost:" + e.key)
            args += (e.day, e.cost_nano)
            for f in LEDGER_FIELDS:
                if getattr(e, f):
                    args += (row_field(e.key, e.model, e.provider, f), getattr(e, f))
        await self._pool.run(self._settle, keys, args)

    async def budget_spent(self, hold_key: str) -> int:
        key, day_from, day_to = budget_span(hold_key)
        with talking():
            pipe = self._pool.redis.pipeline(transaction=False)
            pipe.hget(self._p + hold_key, "spent")
            pipe.hgetall(self._p + "cost:" + key)
            spent, days = await pipe.execute()
        if spent is not None:
            return int(spent)
        # Not tracked yet: what admit would start it from.
        return sum(int(v) for d, v in days.items() if day_from <= d.decode() <= day_to)


def _expire_at(day_to: str) -> int:
    """When a budget period's HASH may go (unix seconds), or 0 for never ("total")."""
    last = dt.date.fromisoformat(day_to)
    if last.year >= 9999:
        return 0
    end = dt.datetime.combine(last + dt.timedelta(days=1 + _GRACE_DAYS), dt.time(), dt.UTC)
    return int(end.timestamp())
