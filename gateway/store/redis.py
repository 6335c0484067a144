"""The Redis store: any number of gateway replicas share limits, leases, budgets,
the spend ledger and the response cache through one Redis.

On the request path it costs one round trip before the answer (`admit`: one
EVALSHA that checks and charges every limit atomically) and one after
(`settle`: one EVALSHA). The scripts and the key layout are in redis_scripts.py.

A Redis that errs, or answers slower than `timeout_s`, raises `StoreDown` (the
limiter applies `state.on_redis_error`); nothing is retried, because a retried
admission might be charged twice. Broken connections are replaced as they are
next taken from the pool, so service resumes by itself when Redis is back.

Windows and leases count by Redis's clock, not the caller's (`Admission.now` is
not used): replicas with skewed clocks agree. `Verdict.at` says which instant
was charged, so settling corrects that bucket.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from contextlib import contextmanager
from typing import Any, Iterator

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from gateway.store import (LEDGER_FIELDS, Admission, LedgerEntry, Settlement, Store, StoreDown, Verdict,
                           budget_span)
from gateway.store import windows as w
from gateway.store.redis_config import RedisConfig
from gateway.store.redis_jobs import RedisJobs
from gateway.store.redis_scripts import ADMIT, SETTLE

log = logging.getLogger("gateway.store")

_REFUSED_BY = {-1: "concurrent", -2: "budget"}
_CONNECTIONS = 128  # per process; a round trip holds one for well under a millisecond
_GRACE_DAYS = 7     # a budget period is kept this long after it ends, for requests still settling


class _Script:
    """A Lua script, called by its SHA (Redis keeps the text once loaded)."""
    __slots__ = ("text", "sha")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


class RedisStore(RedisJobs, RedisConfig, Store):
    def __init__(self, url: str, timeout_s: float = 0.05, prefix: str = "gw:") -> None:
        # A bounded pool that waits (up to the timeout) for a free connection: a burst
        # queues briefly rather than opening a connection per request or failing open.
        # RESP2: with RESP3, redis-py 8 turns on maintenance notifications, which skip its
        # check for connections the server closed, so each one left over from a Redis
        # restart would fail one request (seen in tests/test_limits_replicas.py).
        pool = BlockingConnectionPool.from_url(url, max_connections=_CONNECTIONS, timeout=timeout_s,
                                               socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                               retry=Retry(NoBackoff(), 0), client_name="gateway", protocol=2)
        self._redis = Redis.from_pool(pool)
        self._p = prefix
        self._admit = _Script(ADMIT)
        self._settle = _Script(SETTLE)
        self._init_jobs(url)   # video jobs: their own pool, with a longer timeout (redis_jobs.py)
        self._init_config()    # config versions, on the jobs' pool (redis_config.py)

    async def start(self) -> None:
        # A Redis that is down at start is the same outage as one that goes down later:
        # the limiter's policy applies, and the scripts load on first use.
        try:
            for script in (self._admit, self._settle):
                await self._load(script)
        except StoreDown as e:
            log.warning("Redis is not reachable at start (%s); retried on every request", e)

    async def close(self) -> None:
        await self._redis.aclose()
        await self._close_jobs()

    # -- the request path: one EVALSHA each ------------------------------------

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
        reply = await self._run(self._admit, keys, args)
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
            args += (w.bucket_of(at, win.window_s), delta)
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
                    args += (_row_field(e.key, e.model, e.provider, f), getattr(e, f))
        await self._run(self._settle, keys, args)

    async def _run(self, script: _Script, keys: list[str], args: list[Any]) -> Any:
        with _talking():
            try:
                return await self._redis.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:      # a restarted or flushed Redis forgot the script
                await self._redis.script_load(script.text)
                return await self._redis.evalsha(script.sha, len(keys), *keys, *args)

    async def _load(self, script: _Script) -> None:
        with _talking():
            await self._redis.script_load(script.text)

    # -- reports (off the request path) ----------------------------------------

    async def budget_spent(self, hold_key: str) -> int:
        key, day_from, day_to = budget_span(hold_key)
        with _talking():
            pipe = self._redis.pipeline(transaction=False)
            pipe.hget(self._p + hold_key, "spent")
            pipe.hgetall(self._p + "cost:" + key)
            spent, days = await pipe.execute()
        if spent is not None:
            return int(spent)
        # Not tracked yet: what admit would start it from.
        return sum(int(v) for d, v in days.items() if day_from <= d.decode() <= day_to)

    async def spend_rows(self, day_from: str, day_to: str) -> list[LedgerEntry]:
        with _talking():
            days = [d.decode() for d in await self._redis.zrangebylex(
                self._p + "spend:days", f"[{day_from}", f"[{day_to}")]
            pipe = self._redis.pipeline(transaction=False)
            for day in days:
                pipe.hgetall(self._p + "spend:" + day)
            tables = await pipe.execute() if days else []
        rows: dict[tuple[str, str, str, str], LedgerEntry] = {}
        for day, table in zip(days, tables):
            for name, value in table.items():
                key, model, provider, counter = orjson.loads(name)
                row = rows.get((day, key, model, provider))
                if row is None:
                    row = rows[(day, key, model, provider)] = LedgerEntry(day, key, model, provider, 0)
                setattr(row, counter, int(value))
        return list(rows.values())

    # -- cache -----------------------------------------------------------------

    async def cache_get(self, key: str) -> bytes | None:
        with _talking():
            return await self._redis.get(self._p + "cache:" + key)

    async def cache_put(self, key: str, value: bytes, ttl_s: float) -> None:
        with _talking():
            await self._redis.set(self._p + "cache:" + key, value, px=max(1, math.ceil(ttl_s * 1000)))

    async def ping(self) -> bool:
        """Whether Redis answers in time (False rather than StoreDown: it is the question)."""
        try:
            with _talking():
                return bool(await self._redis.ping())
        except StoreDown:
            return False


@contextmanager
def _talking() -> Iterator[None]:
    """Whatever goes wrong while talking to Redis is Redis being down: redis-py's own
    errors, and what slips past them (uvloop raises RuntimeError on a closed transport)."""
    try:
        yield
    except StoreDown:
        raise
    except Exception as e:
        raise StoreDown(f"Redis: {e!r}") from e


def _row_field(key: str, model: str, provider: str, counter: str) -> bytes:
    # JSON, not a separator: a model name may contain any character.
    return orjson.dumps([key, model, provider, counter])


def _expire_at(day_to: str) -> int:
    """When a budget period's HASH may go (unix seconds), or 0 for never ("total")."""
    last = dt.date.fromisoformat(day_to)
    if last.year >= 9999:
        return 0
    end = dt.datetime.combine(last + dt.timedelta(days=1 + _GRACE_DAYS), dt.time(), dt.timezone.utc)
    return int(end.timestamp())
