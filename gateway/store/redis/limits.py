"""Limits of the Redis store: any number of gateway replicas share windows,
leases and budgets through one Redis.

On the request path it costs one round trip before the answer (`admit`: a
script that checks and charges every limit atomically) and one after
(`settle`, which also writes the ledger row). The admissions and settlements
asked for in the same turn of the event loop go to Redis together, as one
EVALSHA of the BATCH script on the pipelined connection (pipe.py): under load
a Redis command serves many requests, each still decided atomically and in
the order asked. The scripts and the key layout are in limits_lua.py.

Ledger rows decide nothing (a budget is decided by its period's `spent`,
which settling updates in the same step that frees the hold): they are added
up in the replica and written every `LEDGER_FLUSH_S`, one row per (day, key,
model, provider), in one batch. Spend reports flush this replica's rows
first; other replicas' show within that interval; a replica that crashes
loses at most that much of its rows. A budget period is started from the
ledger's days (when its HASH is first made): the first admission a replica
makes in a period sends its key's rows not written yet ahead of it, in the
same batch, so that start counts them all. (After Redis lost its data, a
period started again misses at most a flush interval of each replica's rows.)

Windows and leases count by Redis's clock, not the caller's (`Admission.now` is
not used): replicas with skewed clocks agree. `Verdict.at` says which instant
was charged, so settling corrects that bucket.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
from typing import Any

from gateway.store.base import StoreDown
from gateway.store.ledger import LEDGER_FIELDS, LedgerEntry
from gateway.store.limits import Admission, Limits, Settlement, Verdict, budget_span
from gateway.store.redis.base import Pool, Script, run_script, talking
from gateway.store.redis.ledger import row_field
from gateway.store.redis.limits_lua import BATCH
from gateway.store.redis.pipe import Pipe, ReplyError
from gateway.store.windows import bucket_of

log = logging.getLogger("gateway.store")

_REFUSED_BY = {-1: "concurrent", -2: "budget"}
_MOST_PER_BATCH = 256   # operations in one script call: a burst goes as several, none holding Redis long
LEDGER_FLUSH_S = 0.2
_MOST_FLUSH_WAIT_S = 5.0    # between tries to write ledger rows while Redis is down
_MOST_PERIODS = 10_000   # remembered started budget periods; forgetting one costs a write ahead, no more
_Group = tuple[str, str, str, str]     # (day, key, model, provider)
_GRACE_DAYS = 7     # a budget period is kept this long after it ends, for requests still settling


class RedisLimits(Limits):
    def __init__(self, pool: Pool, pipe: Pipe) -> None:
        self._pool = pool
        self._pipe = pipe
        self._p = pool.prefix
        self._batch = Script(BATCH)
        self._waiting: list[_Op] = []
        self._sending = False
        self._rows: dict[str, dict[_Group, LedgerEntry]] = {}    # ledger rows not written yet, by key
        self._periods: set[str] = set()     # budget periods this replica has seen started (their hold keys)
        self._flusher: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Load the scripts now rather than on the first request."""
        await self._pool.load(self._batch)

    def _run(self, kind: str, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue one operation for this turn's batch; its reply when the batch is answered."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((kind, keys, args, done))
        if not self._sending:
            self._sending = True
            loop.call_soon(self._send)
        return done

    def _send(self) -> None:
        """The turn's operations, as batches written at once; a batch's reply is handed out by a
        callback (no task, no extra turn of the loop, on the common path)."""
        self._sending = False
        while self._waiting:
            ops, self._waiting = self._waiting[:_MOST_PER_BATCH], self._waiting[_MOST_PER_BATCH:]
            keys, args = _batch_call(ops)
            sent = self._pipe.send_now("EVALSHA", self._batch.sha, len(keys), *keys, *args)
            if sent is None:            # not connected yet: connect and send, as a task
                asyncio.get_running_loop().create_task(self._send_batch(ops))
            else:
                sent.add_done_callback(functools.partial(self._answered, ops))

    def _answered(self, ops: list[_Op], sent: asyncio.Future[Any]) -> None:
        error = sent.exception()
        if isinstance(error, ReplyError) and str(error).startswith("NOSCRIPT"):
            asyncio.get_running_loop().create_task(self._send_batch(ops))    # Redis forgot it: load, again
            return
        _hand_out(ops, None if error is None else StoreDown(f"Redis: {error}") if isinstance(error, ReplyError)
                  else error, None if error is not None else sent.result())

    async def _send_batch(self, ops: list[_Op]) -> None:
        keys, args = _batch_call(ops)
        try:
            replies = await run_script(self._pipe, self._batch, keys, args)
        except Exception as e:      # StoreDown, or anything else: each caller gets it
            _hand_out(ops, e, None)
            return
        _hand_out(ops, None, replies)

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
            if a.hold.key not in self._periods:
                for row in self._rows.pop(key, {}).values():     # ahead of the admission, in its batch
                    self._write_row(row)
        reply = await self._run("a", keys, args)
        allowed, refused, retry_after, sec, usec = reply[:5]
        if a.hold is not None and (allowed or refused == -2) and a.hold.key not in self._periods:
            # the script got as far as the budget, so its period's HASH exists now
            if len(self._periods) >= _MOST_PERIODS:
                self._periods.clear()
            self._periods.add(a.hold.key)
        at = int(sec) + int(usec) / 1_000_000     # as the script computed it, so the buckets agree
        if not allowed:
            by = _REFUSED_BY.get(refused) or a.windows[refused - 1].family
            return Verdict(False, by, float(retry_after), at=at)
        per_window = reply[5:]
        return Verdict(True, remaining=[int(r) for r in per_window[0::2]],
                       reset_s=[float(r) for r in per_window[1::2]], at=at)

    async def settle(self, s: Settlement) -> None:
        if s.entry is not None:
            self._add_row(s.entry)
            if not s.corrections and s.lease is None and s.hold is None:
                return
            s = Settlement(s.corrections, s.lease, s.hold, s.spent_nano)
        await self._run("s", *self._settlement(s))

    def _add_row(self, e: LedgerEntry) -> None:
        rows = self._rows.get(e.key)
        if rows is None:
            rows = self._rows[e.key] = {}
        row = rows.get((e.day, e.key, e.model, e.provider))
        if row is None:
            rows[(e.day, e.key, e.model, e.provider)] = LedgerEntry(
                e.day, e.key, e.model, e.provider, *(getattr(e, f) for f in LEDGER_FIELDS))
        else:
            for f in LEDGER_FIELDS:
                setattr(row, f, getattr(row, f) + getattr(e, f))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Write the rows after the flush interval; while Redis is down, try again less often
        (the rows are kept, the outage is logged once)."""
        wait, failing = LEDGER_FLUSH_S, False
        while True:
            await asyncio.sleep(wait)
            try:
                await self.flush()
                return
            except Exception as e:      # StoreDown, or a reply Redis refused: keep the rows, try later
                if not failing:
                    log.warning("ledger rows could not be written, will try again: %s", e)
                failing, wait = True, min(wait * 2, _MOST_FLUSH_WAIT_S)
                if not self._rows:
                    return

    async def flush(self) -> None:
        """Write the ledger rows added up so far (kept for the next try if Redis is down)."""
        by_key, self._rows = self._rows, {}
        rows = [row for rows in by_key.values() for row in rows.values()]
        if not rows:
            return
        outcomes = await asyncio.gather(*(self._write_row(row) for row in rows), return_exceptions=True)
        failed = next((e for e in outcomes if isinstance(e, BaseException)), None)
        if failed is not None:
            raise failed

    def _write_row(self, row: LedgerEntry) -> asyncio.Future[Any]:
        """Queue one row for this turn's batch; back among the rows not written if Redis does not take it."""
        written = self._run("s", *self._settlement(Settlement(entry=row)))
        written.add_done_callback(functools.partial(self._kept_if_lost, row))
        return written

    def _kept_if_lost(self, row: LedgerEntry, written: asyncio.Future[Any]) -> None:
        if not written.cancelled() and written.exception() is not None:
            log.debug("a ledger row is kept for the next flush: %s", written.exception())
            self._add_row(row)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        try:
            await self.flush()
        except StoreDown as e:
            log.warning("%d ledger rows could not be written at shutdown: %s",
                        sum(map(len, self._rows.values())), e)

    def _settlement(self, s: Settlement) -> tuple[list[str], list[Any]]:
        """SETTLE's keys and arguments for `s`."""
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
        return keys, args

    async def budget_spent(self, hold_key: str) -> int:
        key, day_from, day_to = budget_span(hold_key)
        for row in self._rows.pop(key, {}).values():     # a period not tracked yet counts them
            await self._write_row(row)
        with talking():
            pipe = self._pool.redis.pipeline(transaction=False)
            pipe.hget(self._p + hold_key, "spent")
            pipe.hgetall(self._p + "cost:" + key)
            spent, days = await pipe.execute()
        if spent is not None:
            return int(spent)
        # Not tracked yet: what admit would start it from.
        return sum(int(v) for d, v in days.items() if day_from <= d.decode() <= day_to)


_Op = tuple[str, list[str], list[Any], "asyncio.Future[Any]"]


def _batch_call(ops: list[_Op]) -> tuple[list[str], list[Any]]:
    """BATCH's keys and arguments for these operations."""
    keys: list[str] = []
    args: list[Any] = [len(ops)]
    for kind, op_keys, op_args, _ in ops:
        keys += op_keys
        args += (kind, len(op_keys), len(op_args), *op_args)
    return keys, args


def _hand_out(ops: list[_Op], error: BaseException | None, replies: Any) -> None:
    """Each operation's reply, or the batch's failure, to whoever asked."""
    if error is None and (not isinstance(replies, list) or len(replies) != len(ops)):
        error = StoreDown("Redis: a batch answered with the wrong number of replies")
    for i, (*_, done) in enumerate(ops):
        if not done.done():
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(replies[i])


def _expire_at(day_to: str) -> int:
    """When a budget period's HASH may go (unix seconds), or 0 for never ("total")."""
    last = dt.date.fromisoformat(day_to)
    if last.year >= 9999:
        return 0
    end = dt.datetime.combine(last + dt.timedelta(days=1 + _GRACE_DAYS), dt.time(), dt.UTC)
    return int(end.timestamp())
