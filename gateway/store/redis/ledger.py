"""The spend ledger of the Redis store: one HASH per day, written by the
limits' SETTLE script (limits_lua.py has the key layout; rows without a budget
hold are added up in the replica first, limits.py), read back here."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson

from gateway.store.ledger import Ledger, LedgerEntry
from gateway.store.redis.base import Pool, talking


class RedisLedger(Ledger):
    def __init__(self, pool: Pool, flush: Callable[[], Awaitable[None]]) -> None:
        self._pool = pool
        self._p = pool.prefix
        self._flush = flush     # this replica's rows not written yet (RedisLimits.flush)

    async def rows(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        await self._flush()
        redis = self._pool.redis
        with talking():
            days = [d.decode() for d in await redis.zrangebylex(
                self._p + "spend:days", f"[{day_from}", f"[{day_to}")]
            pipe = redis.pipeline(transaction=False)
            for day in days:
                pipe.hgetall(self._p + "spend:" + day)
            tables = await pipe.execute() if days else []
        rows: dict[tuple[str, str, str, str], LedgerEntry] = {}
        for day, table in zip(days, tables, strict=True):
            for name, value in table.items():
                key, model, provider, counter = orjson.loads(name)
                row = rows.get((day, key, model, provider))
                if row is None:
                    row = rows[(day, key, model, provider)] = LedgerEntry(day, key, model, provider, 0)
                setattr(row, counter, int(value))
        return list(rows.values())


def row_field(key: str, model: str, provider: str, counter: str) -> bytes:
    """The field of a day's HASH that one counter of one row is kept under."""
    # JSON, not a separator: a model name may contain any character.
    return orjson.dumps([key, model, provider, counter])
