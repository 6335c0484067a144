"""What the Redis store's windows and leases count this moment, for reports
(`RedisLimits.usage`): read without Lua and without writing anything, in one
MULTI/EXEC round trip on the pool (never the request path's pipelined
connection), so Redis's clock and every key are read at the same instant.

A window is counted the way ADMIT's `counted` counts it (limits_lua.py): its
`n` while its oldest bucket `o` is still in the window, else `n` less the
buckets that left, else the sum of the live buckets; so a report says what the
next admission would find. A lease counts until its expiry (its score), by
Redis's clock: the lease ZSETs' earliest few scores come in the same trip, and
only a key whose earliest are all expired (a replica died holding many) takes
a second trip to count the rest.
"""
from __future__ import annotations

from typing import Any

from gateway.store.limits import InUse, Window
from gateway.store.redis.base import Pool, talking
from gateway.store.windows import BUCKETS, bucket_of

_FIRST_LEASES = 8     # a lease ZSET's earliest scores read with its size: expired ones come first


async def read_usage(pool: Pool, windows: list[Window], leases: list[str]) -> InUse:
    p = pool.prefix

    def fill(trip: Any) -> None:
        trip.time()
        for win in windows:
            trip.hgetall(p + win.key)
        for key in leases:
            trip.zcard(p + key)
            trip.zrange(p + key, 0, _FIRST_LEASES - 1, withscores=True)
    replies = await pool.transaction(p, fill)
    sec, usec = replies[0]
    now = int(sec) + int(usec) / 1_000_000          # as ADMIT computes it: the same double
    counted = [counted_now(fields, now, win.window_s)
               for win, fields in zip(windows, replies[1:1 + len(windows)], strict=True)]
    # ADMIT frees the leases scored at or below this (it sends the bound as '%.3f').
    cutoff = float(f"{now * 1000:.3f}")
    held: list[int] = []
    recount: list[int] = []     # which lease keys need the second trip
    at = 1 + len(windows)
    for i in range(len(leases)):
        size, first = int(replies[at]), replies[at + 1]
        at += 2
        expired = sum(score <= cutoff for _, score in first)
        if expired == _FIRST_LEASES < size:
            recount.append(i)
        held.append(size - expired)
    if recount:
        with talking():
            trip = pool.redis.pipeline(transaction=False)
            for i in recount:
                trip.zcount(p + leases[i], f"({cutoff:.3f}", "+inf")
            for i, live in zip(recount, await trip.execute(), strict=True):
                held[i] = int(live)
    return InUse(counted, held)


def counted_now(fields: dict[bytes, bytes], now: float, window_s: int) -> int:
    """The units a window's HASH (as HGETALL gives it) counts at `now`: ADMIT's `counted`,
    step for step, without the writes."""
    current = bucket_of(now, window_s)
    oldest = current - BUCKETS + 1
    used, o = _number(fields.get(b"n")), _number(fields.get(b"o"))
    if used is None or o is None or oldest - o >= BUCKETS:
        # no sum kept, or every bucket it covered left: the live buckets' sum
        total = 0
        for name, value in fields.items():
            b = _number(name)
            if b is not None and b >= oldest:
                total += int(value)
        return total
    if o >= oldest:
        return used
    for b in range(o, oldest):      # the oldest buckets left: they no longer count
        left = fields.get(b"%d" % b)
        if left is not None:
            used -= int(left)
    return used


def _number(raw: bytes | None) -> int | None:
    """Lua's `tonumber` for what the scripts write ('%d'): None for a missing field, `n` or `o`."""
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
