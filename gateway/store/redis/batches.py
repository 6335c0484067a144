"""Batches' results on Redis, shared by every replica that runs a batch's lines.

Keys (under the store's prefix; on Redis Cluster each batch's pair under a hash
tag of its own, `{batch:<id>}`, so the script that changes both runs on one
node, and batches spread over the shards: a batch of 50,000 lines may hold
hundreds of MB):
  batch:<id>:lines    HASH  line index (decimal) -> b"1" (ok) or b"0" (failed), then the line
  batch:<id>:tally    HASH  done, failed, cost_nano, input_tokens, output_tokens;
                            stop ("cancel" | "expire") and stop_at (unix s) once asked

A put is one script (PUT): HSETNX of the line, and the tally's HINCRBYs only
when it stored, so a line stored twice (a replica that died mid-line, its line
run again) is counted once. A stop is one script too (STOP), so its reason and
time are kept as a pair. A batch's first result sets both keys to expire
after 40 days, so results a stalled replica puts after the batch dropped them do
not stay for ever. On Redis Cluster a put answers once a replica has it too
(`run_kept`): a stored answer is not lost to a failover. Reads are one command
each (HMGET), bounded by what is asked for.

At most `_IN_FLIGHT` calls of this part are in flight per process; the rest wait
their turn. The pool it shares (jobs, files, configs: 16 connections) must keep
room for the others, and on Redis Cluster redis-py does not wait for a free
connection to a node: a 17th command at once to one node fails (and a batch's
keys are all on one node), where a batch's lines finish many at a time. And each
call there first makes sure the client has met the cluster: the first commands of
a new client, sent at once, may otherwise race its discovery of the cluster and
fail (seen with redis-py 8.1).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.store.batches import BatchLines, Tally, check_stop
from gateway.store.redis.base import Pool, Script, talking
from gateway.store.redis.cluster import tagged

# KEYS: batch:<id>:lines, batch:<id>:tally
# ARGV: index, b"1"/b"0" + line, failed (1 or 0), cost_nano, input_tokens, output_tokens, ttl_s
# Returns 1 when stored, 0 when the index had a result already (nothing written).
PUT = r"""
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[2], 'done', 1) == 1 then
  -- a batch's first result: both keys go by themselves long after its window, should a
  -- late put (a replica that was stalled) make them again after the batch dropped them
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
redis.call('HINCRBY', KEYS[2], 'failed', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'cost_nano', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'input_tokens', ARGV[5])
redis.call('HINCRBY', KEYS[2], 'output_tokens', ARGV[6])
return 1
"""

# KEYS: batch:<id>:tally
# ARGV: reason, at
# Returns {stop, stop_at} in effect: these, unless a stop was asked before.
STOP = r"""
if redis.call('HSETNX', KEYS[1], 'stop', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'stop_at', ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'stop', 'stop_at')
"""

_TALLY = ("done", "failed", "cost_nano", "input_tokens", "output_tokens", "stop", "stop_at")
_IN_FLIGHT = 8      # half the job pool's connections (redis/__init__.py)
_KEEP_S = 40 * 86400     # results left behind expire after this (a batch's window is a day)


class RedisBatchLines(BatchLines):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._put, self._stop = Script(PUT), Script(STOP)
        self._turns = asyncio.Semaphore(_IN_FLIGHT)

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """One of the `_IN_FLIGHT` calls at a time, with a client that knows the cluster's slots."""
        async with self._turns:
            if self._pool.cluster:
                with talking():
                    await self._redis.initialize()     # at once when it has already
            yield

    def _keys(self, batch_id: str) -> tuple[str, str]:
        """(lines, tally): on Redis Cluster under the batch's own hash tag, so both are in one slot."""
        p = self._pool.prefix
        base = tagged(p, "batch:" + batch_id) if self._pool.cluster else p + "batch:" + batch_id + ":"
        return base + "lines", base + "tally"

    async def put(self, batch_id: str, index: int, ok: bool, line: bytes, cost_nano: int = 0,
                  input_tokens: int = 0, output_tokens: int = 0) -> bool:
        async with self._turn():
            # Kept on a replica before it counts (Redis Cluster): an answer is not lost to a failover.
            return bool(await self._pool.run_kept(self._put, list(self._keys(batch_id)),
                                                  [index, (b"1" if ok else b"0") + line, 0 if ok else 1,
                                                   cost_nano, input_tokens, output_tokens, _KEEP_S]))

    async def stored(self, batch_id: str, first: int, count: int) -> list[tuple[bool, bytes] | None]:
        if count <= 0:
            return []
        lines, _ = self._keys(batch_id)
        async with self._turn():
            with talking():
                values = await self._redis.hmget(lines, [str(i) for i in range(first, first + count)])
        return [None if v is None else (v[:1] == b"1", v[1:]) for v in values]

    async def tally(self, batch_id: str) -> Tally:
        _, tally = self._keys(batch_id)
        async with self._turn():
            with talking():
                done, failed, cost, tokens_in, tokens_out, stop, stop_at = await self._redis.hmget(tally, _TALLY)
        return Tally(int(done or 0), int(failed or 0), int(cost or 0), int(tokens_in or 0), int(tokens_out or 0),
                     None if stop is None else stop.decode(), None if stop_at is None else int(stop_at))

    async def stop(self, batch_id: str, reason: str, at: int) -> tuple[str, int]:
        check_stop(reason)
        _, tally = self._keys(batch_id)
        async with self._turn():
            stop, stop_at = await self._pool.run(self._stop, [tally], [reason, at])
        return stop.decode(), int(stop_at)

    async def drop(self, batch_id: str) -> None:
        async with self._turn():
            with talking():
                # UNLINK: DEL's meaning, but a big hash (50,000 lines) is freed off Redis's main thread
                await self._redis.unlink(*self._keys(batch_id))
