"""A page of a key's records, listed by id in a sorted set (all scores 0, ordered by id) beside
the records' hashes: what video jobs and files are listed by."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gateway.store.redis.base import talking

T = TypeVar("T")
GONE = object()     # what `made` answers for an id whose record is gone: dropped from the list


async def lex_page(redis: Any, listed: str, after: str | None, limit: int, order: str, hash_of: Callable[[str], str],
                   fields: Sequence[str], made: Callable[[str, list[Any]], Any]) -> tuple[list[T], bool]:
    """(up to `limit` records after the id `after`, whether more follow). `made(id, values)` is the
    record from its hash's `fields`, None to leave it out (still listed), or GONE.

    Plain reads, no script: ids from the list, then their records in one pipeline. An id whose record
    is gone (deleted or forgotten meanwhile) is skipped and dropped from the list: ids are never
    reused, so it cannot be a record made since."""
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    want, asc = max(0, limit) + 1, order == "asc"
    cursor = "(" + after if after else "-" if asc else "+"
    found: list[T] = []
    while True:
        with talking():
            if asc:
                ids = await redis.zrangebylex(listed, cursor, "+", start=0, num=want)
            else:
                ids = await redis.zrevrangebylex(listed, cursor, "-", start=0, num=want)
            if not ids:
                break
            # Not a transaction (on Redis Cluster, redis-py's would block the loop): reads only.
            trip = redis.pipeline(transaction=False)
            for i in ids:
                trip.hmget(hash_of(i.decode()), fields)
            rows = await trip.execute()
        gone = []
        for i, values in zip(ids, rows, strict=True):
            record = made(i.decode(), values)
            if record is GONE:
                gone.append(i)
            elif record is not None:
                found.append(record)
                if len(found) == want:
                    break
        if gone:
            with talking():
                await redis.zrem(listed, *gone)
        if len(found) == want or len(ids) < want:
            break
        cursor = "(" + ids[-1].decode()
    return found[:limit], len(found) > limit
