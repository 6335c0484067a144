"""Limits of the Redis store: any number of gateway replicas share windows,
leases and budgets through one Redis.

On the request path it costs one round trip before the answer (`admit`: a
script that checks and charges every limit atomically). The admissions asked
for in the same turn of the event loop go to Redis together, as one EVALSHA
of the BATCH script on the pipelined connection (pipe.py): under load a Redis
command serves many requests, each still decided atomically and in the order
asked. At light load (the last batch one request's, nothing in flight) an
admission goes at once, with no turn of the loop to wait for. Settlements
(after the answer: tokens corrected, the slot freed, the hold turned into
spend) wait up to SETTLE_WAIT_S to go with the next batch of
admissions, ahead of them, so a replica's own next request always sees its
last one settled; another replica sees it within that wait. The scripts and
the key layout are in limits_lua.py; arguments are sent as RESP made once per
key and limit (`_window`, `_lease`, `_period`). What windows and leases
count now, for reports (`usage`), is read without a script and off this
connection (limits_usage.py).

While a key is far from its limits, most admissions need no round trip at
all: one that goes to Redis asks for a grant beside it, room for more requests
of the same shape charged in the same step, and the replica admits from it
until it runs out or its bucket ends (grants.py).

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
from typing import Any, NamedTuple

from gateway.store.base import StoreDown
from gateway.store.ledger import LEDGER_FIELDS, LedgerEntry
from gateway.store.limits import Admission, Hold, InUse, Limits, Settlement, Verdict, Window, budget_span
from gateway.store.redis.base import Pool, Script, run_encoded
from gateway.store.redis.grants import FLOOR_N, GRANT_N, Grant, Shape, settled_in, shape_of, verdict_from
from gateway.store.redis.ledger import row_field
from gateway.store.redis.limits_lua import BATCH
from gateway.store.redis.limits_usage import read_usage
from gateway.store.redis.pipe import Pipe, ReplyError, bulk, remembered
from gateway.store.windows import bucket_of, bucket_s

log = logging.getLogger("gateway.store")

_REFUSED_BY = {-1: "concurrent", -2: "budget"}
_MOST_PER_BATCH = 256   # operations in one script call: a burst goes as several, none holding Redis long
LEDGER_FLUSH_S = 0.2
SETTLE_WAIT_S = 0.002   # a settlement waits this long at most for an admission to go with
_MOST_FLUSH_WAIT_S = 5.0    # between tries to write ledger rows while Redis is down
_MOST_PERIODS = 10_000   # remembered started budget periods; forgetting one costs a write ahead, no more
_MOST_SHAPES = 10_000    # window and lease keys whose RESP is kept
_Group = tuple[str, str, str, str]     # (day, key, model, provider)
_NO_GRANT_S = 0.1       # after Redis gave a shape no grant, its requests go to Redis at once for this long
_GRACE_DAYS = 7     # a budget period is kept this long after it ends, for requests still settling


class RedisLimits(Limits):
    def __init__(self, pool: Pool, pipe: Pipe, grants: bool = True) -> None:
        self._pool = pool
        self._pipe = pipe
        self._p = pool.prefix
        self._batch = Script(BATCH)
        self._waiting: list[_Op] = []
        self._sending = False
        self._later: asyncio.TimerHandle | None = None     # when settlements go if no admission takes them
        self._light = True      # the last batch was one request's: the next admission need not wait for company
        self._rows: dict[str, dict[_Group, LedgerEntry]] = {}    # ledger rows not written yet, by key
        self._periods: set[str] = set()     # budget periods this replica has seen started (their hold keys)
        self._period_of: dict[str, _Period] = {}
        self._shapes: dict[str, tuple[Any, ...]] = {}     # window and lease keys: their limits and RESP
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._grants_on = grants
        self._grants: dict[Shape, Grant] = {}      # room this replica holds, by shape (grants.py)
        self._asking: dict[Shape, asyncio.Future[None]] = {}    # shapes whose grant is on its way: done when it is
        self._no_grant_until: dict[Shape, float] = {}   # shapes Redis gave no grant lately (near a limit): no waiting

    async def load(self) -> None:
        """Load the scripts now rather than on the first request."""
        await self._pool.load(self._batch)

    def _run(self, kind: bytes, keys: list[bytes], args: list[bytes], soon: bool = True) -> asyncio.Future[bytes]:
        """Queue one operation (its keys and arguments in RESP) for a batch; its reply, the
        fields ADMIT or SETTLE returned, when the batch is answered. A batch goes at the end
        of this turn of the loop; an operation that is not `soon` (a settlement: no answer
        waits for it) waits up to SETTLE_WAIT_S for the next one instead."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()
        self._waiting.append((kind, keys, args, done))
        if self._sending:
            pass
        elif soon and self._light and not self._pipe.waiting:
            self._send()            # light load, nothing in flight: no batch to wait for, go now
        elif soon:
            self._sending = True
            loop.call_soon(self._send)
        elif self._later is None:
            self._later = loop.call_later(SETTLE_WAIT_S, self._send)
        return done

    def _send(self) -> None:
        """The operations waiting, as batches written at once; a batch's reply is handed out
        as it is read (no task, no extra turn of the loop, on the common path)."""
        self._sending = False
        if self._later is not None:
            self._later.cancel()
            self._later = None
        self._light = len(self._waiting) <= 2      # one request's admission and a settlement, at most
        while self._waiting:
            ops, self._waiting = self._waiting[:_MOST_PER_BATCH], self._waiting[_MOST_PER_BATCH:]
            if not self._pipe.send_with(_batch_call(self._batch, ops), functools.partial(self._answered, ops)):
                # not connected yet: connect and send, as a task
                asyncio.get_running_loop().create_task(self._send_batch(ops))

    def _answered(self, ops: list[_Op], reply: Any) -> None:
        if isinstance(reply, ReplyError):
            if str(reply).startswith("NOSCRIPT"):       # Redis forgot the script: load it, again
                asyncio.get_running_loop().create_task(self._send_batch(ops))
            else:
                _hand_out(ops, StoreDown(f"Redis: {reply}"), None)
        elif isinstance(reply, BaseException):
            _hand_out(ops, reply, None)
        else:
            _hand_out(ops, None, reply)

    async def _send_batch(self, ops: list[_Op]) -> None:
        try:
            replies = await run_encoded(self._pipe, self._batch, _batch_call(self._batch, ops))
        except Exception as e:      # StoreDown, or anything else: each caller gets it
            _hand_out(ops, e, None)
            return
        _hand_out(ops, None, replies)

    async def admit(self, a: Admission) -> Verdict:
        if not self._grants_on:
            return await self._admit(a, None)
        shape = shape_of(a)
        loop = asyncio.get_running_loop()
        waited = False
        while True:
            grant = self._grants.get(shape)
            if grant is not None:
                if loop.time() >= grant.until:
                    self._end_grant(grant)
                elif grant.take(a):
                    return verdict_from(grant, a)
            coming = self._asking.get(shape)
            if coming is None:
                break
            if waited or self._no_grant_until.get(shape, 0.0) > loop.time():
                return await self._admit(a, None)
            # A grant of this shape is on its way: wait for it rather than going to Redis for this
            # request alone (with a busy key's requests in flight, each would make a round trip of
            # its own for as long as the grant takes to come). Once, and not near a limit.
            waited = True
            await asyncio.shield(coming)
        coming = self._asking[shape] = loop.create_future()
        try:
            return await self._admit(a, shape)
        finally:
            del self._asking[shape]
            coming.set_result(None)

    async def _admit(self, a: Admission, ask: Shape | None) -> Verdict:
        # A key's windows, lease and budget come back request after request with the same
        # keys and limits: their RESP is made once (`_window`, `_lease`, `_period`).
        keys: list[bytes] = []
        args = [_count(len(a.windows)), _FLAG[a.lease is not None], _FLAG[a.hold is not None],
                *(_NO_GRANT if ask is None else _GRANT)]
        for win in a.windows:
            key, limit, window_s = self._window(win.key, win.limit, win.window_s)
            keys.append(key)
            args += (limit, window_s, remembered(win.amount) if win.amount < 2 else bulk(win.amount))
        if a.lease is not None:
            key, limit_and_ttl = self._lease(a.lease.key, a.lease.limit, a.lease.ttl_s)
            keys.append(key)
            args += (limit_and_ttl[0], bulk(a.lease.id), limit_and_ttl[1])
        if a.hold is not None:
            period = self._period(a.hold.key)
            keys += (period.hold_key, period.cost_key)
            args += (remembered(a.hold.limit), bulk(a.hold.amount), *period.args)
            if a.hold.key not in self._periods:
                for row in self._rows.pop(period.key, {}).values():     # ahead of the admission, in its batch
                    self._write_row(row)
        asked_at = asyncio.get_running_loop().time()    # before Redis's clock read: a grant's end is never late
        reply = (await self._run(_ADMIT, keys, args)).split()
        allowed, refused = reply[0] == b"1", int(reply[1])
        if a.hold is not None and (allowed or refused == -2) and a.hold.key not in self._periods:
            # the script got as far as the budget, so its period's HASH exists now
            if len(self._periods) >= _MOST_PERIODS:
                self._periods.clear()
            self._periods.add(a.hold.key)
        at = int(reply[3]) + int(reply[4]) / 1_000_000     # as the script computed it, so the buckets agree
        granted = allowed and reply[5] == b"1"
        if ask is not None and not granted:     # near a limit: its requests need not wait for grants a while
            if len(self._no_grant_until) >= _MOST_SHAPES:
                self._no_grant_until.clear()
            self._no_grant_until[ask] = asked_at + _NO_GRANT_S
        if not allowed:
            by = _REFUSED_BY.get(refused) or a.windows[refused - 1].family
            return Verdict(False, by, float(reply[2]), at=at)
        per_window = reply[6:]
        remaining, reset_s = [int(r) for r in per_window[0::2]], [float(r) for r in per_window[1::2]]
        if granted and ask is not None:
            grant = self._grant(ask, a, at, asked_at, remaining, reset_s)
            remaining = [r + u for r, u in zip(remaining, grant.units, strict=True)]     # room this replica has
        return Verdict(True, remaining=remaining, reset_s=reset_s, at=at)

    def _grant(self, shape: Shape, a: Admission, at: float, asked_at: float, remaining: list[int],
               reset_s: list[float]) -> Grant:
        """Hold the grant Redis gave with `a`'s admission (ending the one it replaces)."""
        left = min((_bucket_left(at, w.window_s) for w in a.windows), default=_GRANT_WITHOUT_WINDOWS_S)
        grant = Grant(shape, a.windows, at, asked_at + left, [GRANT_N * w.amount for w in a.windows],
                      remaining, [asked_at + r for r in reset_s])
        if a.lease is not None:
            grant.slots = [f"{a.lease.id}.{j}" for j in range(1, GRANT_N + 1)]
        if a.hold is not None:
            grant.hold = GRANT_N * a.hold.amount
        old = self._grants.get(shape)
        if old is not None:
            self._end_grant(old)
        self._grants[shape] = grant
        asyncio.get_running_loop().call_at(grant.until, self._end_grant, grant)
        return grant

    def _end_grant(self, grant: Grant) -> None:
        """Give back what is left of a grant, and turn what its requests spent from held into spent."""
        if grant.ended:
            return
        grant.ended = True
        if self._grants.get(grant.shape) is grant:
            del self._grants[grant.shape]
        lease, hold = grant.shape[1], grant.shape[2]
        s = Settlement(corrections=[(w, grant.at, -units) for w, units in zip(grant.windows, grant.units, strict=True)
                                    if units])
        if hold is not None and (grant.hold or grant.spent):
            s.hold, s.spent_nano = Hold(hold[0], hold[1], grant.hold + grant.spent), grant.spent
        slots = grant.slots if lease is not None else []
        if not s.corrections and s.hold is None and not slots:
            return
        keys, args = self._settlement(s, slots, lease[0] if slots else None)
        self._run(_SETTLE, keys, args, soon=False).add_done_callback(_seen)

    def _window(self, key: str, limit: int, window_s: int) -> tuple[bytes, bytes, bytes]:
        """(key, limit, window_s), in RESP. (One list item is one argument: BATCH counts them.)"""
        shape = self._shapes.get(key)
        if shape is None or shape[0] != limit or shape[1] != window_s:
            if len(self._shapes) >= _MOST_SHAPES:
                self._shapes.clear()
            shape = self._shapes[key] = (limit, window_s, bulk(self._p + key), (bulk(limit), bulk(window_s)))
        return shape[2], *shape[3]

    def _lease(self, key: str, limit: int, ttl_s: float) -> tuple[bytes, tuple[bytes, bytes]]:
        """(key, (limit, ttl_ms)), in RESP."""
        shape = self._shapes.get(key)
        if shape is None or shape[0] != limit or shape[1] != ttl_s:
            if len(self._shapes) >= _MOST_SHAPES:
                self._shapes.clear()
            shape = self._shapes[key] = (limit, ttl_s, bulk(self._p + key),
                                         (bulk(limit), bulk(math.ceil(ttl_s * 1000))))
        return shape[2], shape[3]

    def _key(self, key: str) -> bytes:
        """A window's or lease's key, in RESP (as `_window` and `_lease` made it, or made now)."""
        shape = self._shapes.get(key)
        return shape[2] if shape is not None else bulk(self._p + key)

    def _period(self, hold_key: str) -> _Period:
        """What ADMIT needs of a budget period, worked out once per period."""
        period = self._period_of.get(hold_key)
        if period is None:
            if len(self._period_of) >= _MOST_PERIODS:
                self._period_of.clear()
            key, day_from, day_to = budget_span(hold_key)
            period = self._period_of[hold_key] = _Period(
                key, bulk(self._p + hold_key), bulk(self._p + "cost:" + key),
                (bulk(day_from), bulk(day_to), bulk(_expire_at(day_to))))
        return period

    async def settle(self, s: Settlement) -> None:
        if s.given is not None:
            s = settled_in(s.given, s)
        if s.entry is not None:
            self._add_row(s.entry)
            if not s.corrections and s.lease is None and s.hold is None:
                return
            s = Settlement(s.corrections, s.lease, s.hold, s.spent_nano)
        await self._run(_SETTLE, *self._settlement(s), soon=False)

    def _add_row(self, e: LedgerEntry) -> None:
        rows = self._rows.get(e.key)
        if rows is None:
            rows = self._rows[e.key] = {}
        group = e.group
        row = rows.get(group)
        if row is None:
            rows[group] = e.copy()
        else:
            row.add(e)
        if (self._flusher is None or self._flusher.done()) and not self._closed:
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
        written = self._run(_SETTLE, *self._settlement(Settlement(entry=row)))
        written.add_done_callback(functools.partial(self._kept_if_lost, row))
        return written

    def _kept_if_lost(self, row: LedgerEntry, written: asyncio.Future[Any]) -> None:
        if not written.cancelled() and written.exception() is not None:
            log.debug("a ledger row is kept for the next flush: %s", written.exception())
            self._add_row(row)

    async def close(self) -> None:
        self._closed = True         # rows a failed last flush keeps wait for no later one
        self.end_grants()
        await self._drain()
        if self._flusher is not None:
            self._flusher.cancel()
        try:
            await self.flush()
        except StoreDown as e:
            log.warning("%d ledger rows could not be written at shutdown: %s",
                        sum(map(len, self._rows.values())), e)

    def _settlement(self, s: Settlement, slots: list[str] | None = None,
                    slots_key: str | None = None) -> tuple[list[bytes], list[bytes]]:
        """SETTLE's keys and arguments for `s` (or, for a grant, `slots` of the lease `slots_key`), in RESP."""
        p = self._p
        if s.lease is not None:
            slots, slots_key = [s.lease.id], s.lease.key
        keys: list[bytes] = []
        args = [_count(len(s.corrections)),
                _count(len(slots) if slots else 0), _FLAG[s.hold is not None], _FLAG[s.entry is not None]]
        for win, at, delta in s.corrections:
            keys.append(self._key(win.key))
            args += (bulk(bucket_of(at, win.window_s)), bulk(delta))
        if slots:
            assert slots_key is not None
            keys.append(self._key(slots_key))
            args += (bulk(i) for i in slots)
        if s.hold is not None:
            keys.append(self._period(s.hold.key).hold_key)
            args += (bulk(-s.hold.amount), bulk(s.spent_nano))
        if s.entry is not None:
            e = s.entry
            keys += (remembered(p + "spend:" + e.day), remembered(p + "spend:days"), remembered(p + "cost:" + e.key))
            args += (remembered(e.day), bulk(e.cost_nano))
            for f, n in zip(LEDGER_FIELDS, e.counts(), strict=True):
                if n:
                    args += (remembered(row_field(e.key, e.model, e.provider, f)), bulk(n))
        return keys, args

    async def usage(self, windows: list[Window], leases: list[str]) -> InUse:
        await self._drain()     # this replica's finished requests, settled first
        use = await read_usage(self._pool, windows, leases)
        # Room this replica's grants hold but no request has used is not use (other replicas' can't be seen here).
        unused: dict[str, int] = {}
        for grant in self._grants.values():
            for w, units in zip(grant.windows, grant.units, strict=True):
                unused[w.key] = unused.get(w.key, 0) + max(0, units)
            if grant.shape[1] is not None:
                unused[grant.shape[1][0]] = unused.get(grant.shape[1][0], 0) + len(grant.slots)
        if unused:
            use.windows = [max(0, n - unused.get(w.key, 0)) for n, w in zip(use.windows, windows, strict=True)]
            use.leases = [max(0, n - unused.get(key, 0)) for n, key in zip(use.leases, leases, strict=True)]
        return use

    def end_grants(self) -> None:
        """Give back every grant now (their requests still in flight settle on their own)."""
        for grant in list(self._grants.values()):
            self._end_grant(grant)

    async def budget_spent(self, hold_key: str) -> int:
        key, day_from, day_to = budget_span(hold_key)
        for grant in list(self._grants.values()):      # spend noted in a grant, into the period's `spent` first
            if grant.shape[2] is not None and grant.shape[2][0] == hold_key:
                self._end_grant(grant)
        for row in self._rows.pop(key, {}).values():     # a period not tracked yet counts them
            self._write_row(row)
        await self._drain()
        # On the same connection, so after every settlement this replica sent.
        try:
            spent, days = await asyncio.gather(self._pipe.call("HGET", self._p + hold_key, "spent"),
                                               self._pipe.call("HGETALL", self._p + "cost:" + key))
        except ReplyError as e:
            raise StoreDown(f"Redis: {e}") from None
        if spent is not None:
            return int(spent)
        # Not tracked yet: what admit would start it from.
        return sum(int(v) for d, v in zip(days[0::2], days[1::2], strict=True) if day_from <= d.decode() <= day_to)

    async def _drain(self) -> None:
        """Send the operations waiting (settlements waiting for an admission) now, and wait
        for them (a failure is theirs to report)."""
        if self._waiting:
            waiting = [op[3] for op in self._waiting]
            self._send()
            await asyncio.gather(*waiting, return_exceptions=True)


_Op = tuple[bytes, list[bytes], list[bytes], "asyncio.Future[bytes]"]
_FLAG = {False: remembered(0), True: remembered(1)}
_COUNTS = [bulk(n) for n in range(8)]


def _count(n: int) -> bytes:
    return _COUNTS[n] if n < 8 else bulk(n)

_ADMIT, _SETTLE = bulk("a"), bulk("s")     # an operation's kind, as BATCH reads it
_NO_GRANT = (remembered(0), remembered(0))
_GRANT = (remembered(GRANT_N), remembered(FLOOR_N))
_GRANT_WITHOUT_WINDOWS_S = 1.0      # how long a grant of a slot and budget alone is held


def _bucket_left(at: float, window_s: int) -> float:
    """Seconds from `at` to the end of its bucket of a `window_s` window."""
    return (bucket_of(at, window_s) + 1) * bucket_s(window_s) - at


def _seen(done: asyncio.Future[Any]) -> None:
    """A grant given back with no one waiting: its failure is logged, not left unread."""
    if not done.cancelled() and done.exception() is not None:
        log.debug("a grant could not be given back (Redis counts it until its window, lease or period ends): %s",
                  done.exception())


class _Period(NamedTuple):
    key: str                        # the API key whose budget it is
    hold_key: bytes                 # its HASH, and the key's cost-per-day HASH, in RESP
    cost_key: bytes
    args: tuple[bytes, bytes, bytes]    # day_from, day_to, expire_at, as ADMIT takes them


def _batch_call(script: Script, ops: list[_Op]) -> bytes:
    """The EVALSHA of BATCH for these operations, in RESP."""
    n_keys = sum(len(op[1]) for op in ops)
    parts = [b"", b"$7\r\nEVALSHA\r\n", remembered(script.sha), remembered(n_keys)]
    for op in ops:
        parts += op[1]
    parts.append(remembered(len(ops)))
    for kind, op_keys, op_args, _ in ops:
        parts += (kind, remembered(len(op_keys)), remembered(len(op_args)))
        parts += op_args
    parts[0] = b"*%d\r\n" % (len(parts) - 1)
    return b"".join(parts)


def _hand_out(ops: list[_Op], error: BaseException | None, replies: Any) -> None:
    """Each operation's reply, or the batch's failure, to whoever asked. (BATCH answers
    with one string: a line per operation.)"""
    if error is None:
        lines = replies.split(b"\n") if isinstance(replies, bytes) else []
        if len(lines) != len(ops):
            error = StoreDown("Redis: a batch answered with the wrong number of replies")
    for i, (*_, done) in enumerate(ops):
        if not done.done():
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(lines[i])


def _expire_at(day_to: str) -> int:
    """When a budget period's HASH may go (unix seconds), or 0 for never ("total")."""
    last = dt.date.fromisoformat(day_to)
    if last.year >= 9999:
        return 0
    end = dt.datetime.combine(last + dt.timedelta(days=1 + _GRACE_DAYS), dt.time(), dt.UTC)
    return int(end.timestamp())
