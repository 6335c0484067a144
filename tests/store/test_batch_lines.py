"""The batches' results contract (gateway/store/batches.py), run against every store
(embedded, one Redis, a Redis Cluster); and what only one store has: the embedded
store's tables in a file an older gateway made, the Redis keys' names and slots (the scripts'
keys are checked with every other script's, tests/store/test_scripts_keys.py)."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest
from redis.crc import key_slot

from gateway.store import EmbeddedStore, Tally
from gateway.store.redis.base import Pool
from gateway.store.redis.batches import RedisBatchLines

T0 = 1_767_000_000      # unix seconds
BATCH = "batch_0000019b6f2a1c00aa55aa55aa55aa55"


def line(n: int) -> bytes:
    """Line n's result as the output file has it (bytes: any, kept as they are)."""
    return b'{"id": "batch_req_%d", "custom_id": "r-%d", "response": {"body": "\xc3\xa9"}}\n' % (n, n)


async def test_results_read_back_in_order_with_gaps_as_none(open_store):
    async with open_store() as store:
        for n in (0, 1, 3, 6):
            assert await store.batches.put(BATCH, n, n != 3, line(n))
        assert await store.batches.stored(BATCH, 0, 8) == [
            (True, line(0)), (True, line(1)), None, (False, line(3)), None, None, (True, line(6)), None]
        assert await store.batches.stored(BATCH, 3, 2) == [(False, line(3)), None]
        assert await store.batches.stored(BATCH, 100, 3) == [None, None, None]
        assert await store.batches.stored(BATCH, 0, 0) == []
        assert await store.batches.stored("batch_unknown", 0, 2) == [None, None]
    async with open_store() as store:       # opened again: still there
        assert await store.batches.stored(BATCH, 0, 2) == [(True, line(0)), (True, line(1))]
        assert (await store.batches.tally(BATCH)).done == 4


async def test_a_second_result_for_a_line_is_refused_and_not_counted(open_store):
    async with open_store() as store:
        assert await store.batches.put(BATCH, 7, True, line(7), cost_nano=100, input_tokens=10, output_tokens=5)
        before = await store.batches.tally(BATCH)
        assert not await store.batches.put(BATCH, 7, False, b"another", cost_nano=900, input_tokens=90,
                                           output_tokens=50)
        assert await store.batches.stored(BATCH, 7, 1) == [(True, line(7))]
        assert await store.batches.tally(BATCH) == before == Tally(1, 0, 100, 10, 5)


async def test_the_tally_sums_what_was_stored(open_store):
    async with open_store() as store:
        assert await store.batches.tally(BATCH) == Tally()
        await store.batches.put(BATCH, 0, True, line(0), cost_nano=1_500, input_tokens=12, output_tokens=30)
        await store.batches.put(BATCH, 1, False, line(1))
        await store.batches.put(BATCH, 2, True, line(2), cost_nano=2_000_000_000_000, input_tokens=7,
                                output_tokens=1)
        await store.batches.put(BATCH, 3, False, line(3), cost_nano=10, input_tokens=3)
        assert await store.batches.tally(BATCH) == Tally(done=4, failed=2, cost_nano=2_000_000_001_510,
                                                         input_tokens=22, output_tokens=31)


async def test_a_line_put_by_many_at_once_is_stored_and_counted_once(open_store):
    """50 puts of one line at once, from two stores sharing the state (two replicas, or two processes
    sharing the embedded file): one is stored."""
    async with open_store() as store, open_store() as other:
        stored = await asyncio.gather(*((store if n % 3 else other).batches.put(
            BATCH, 42, n % 2 == 0, b"try %d" % n, cost_nano=5, input_tokens=2, output_tokens=1) for n in range(50)))
        assert stored.count(True) == 1
        winner = stored.index(True)
        assert await store.batches.stored(BATCH, 42, 1) == [(winner % 2 == 0, b"try %d" % winner)]
        assert await store.batches.tally(BATCH) == Tally(1, 0 if winner % 2 == 0 else 1, 5, 2, 1)


async def test_lines_put_at_once_are_all_counted(open_store):
    async with open_store() as store:
        stored = await asyncio.gather(*(store.batches.put(BATCH, n, n % 5 != 0, line(n), cost_nano=n,
                                                          input_tokens=1, output_tokens=2) for n in range(60)))
        assert all(stored)
        assert await store.batches.tally(BATCH) == Tally(60, 12, sum(range(60)), 60, 120)
        assert await store.batches.stored(BATCH, 0, 60) == [(n % 5 != 0, line(n)) for n in range(60)]


async def test_the_first_stop_asked_is_kept(open_store):
    async with open_store() as store:
        await store.batches.put(BATCH, 0, True, line(0), cost_nano=3)
        assert await store.batches.stop(BATCH, "cancel", T0) == ("cancel", T0)
        assert await store.batches.stop(BATCH, "expire", T0 + 60) == ("cancel", T0)
        assert await store.batches.stop(BATCH, "cancel", T0 + 90) == ("cancel", T0)
        assert await store.batches.tally(BATCH) == Tally(1, 0, 3, stop="cancel", stop_at=T0)
        # asked before any line is stored: kept, and the lines count on
        assert await store.batches.stop("batch_other", "expire", T0 + 5) == ("expire", T0 + 5)
        assert await store.batches.put("batch_other", 0, False, line(0))
        assert await store.batches.tally("batch_other") == Tally(1, 1, stop="expire", stop_at=T0 + 5)
        assert await store.batches.stop("batch_other", "cancel", T0 + 6) == ("expire", T0 + 5)


async def test_only_cancel_and_expire_stop_a_batch(open_store):
    async with open_store() as store:
        with pytest.raises(ValueError):
            await store.batches.stop(BATCH, "pause", T0)
        assert await store.batches.tally(BATCH) == Tally()


async def test_a_thousand_lines_read_in_one_call(open_store):
    async with open_store() as store:
        have = set(range(0, 2_700, 11)) | {999, 1_000, 2_699}
        await asyncio.gather(*(store.batches.put(BATCH, n, True, b"%d" % n) for n in sorted(have)))
        for first in (0, 1_000, 1_700):
            got = await store.batches.stored(BATCH, first, 1_000)
            assert got == [(True, b"%d" % n) if n in have else None for n in range(first, first + 1_000)]


async def test_a_dropped_batch_is_forgotten(open_store):
    async with open_store() as store:
        for n in range(5):
            await store.batches.put(BATCH, n, n != 2, line(n), cost_nano=10, input_tokens=1, output_tokens=1)
        await store.batches.stop(BATCH, "expire", T0)
        await store.batches.put("batch_kept", 0, True, line(0))
        await store.batches.drop(BATCH)
        assert await store.batches.tally(BATCH) == Tally()
        assert await store.batches.stored(BATCH, 0, 5) == [None] * 5
        await store.batches.drop(BATCH)                             # twice: nothing to do
        await store.batches.drop("batch_never")
        assert await store.batches.stored("batch_kept", 0, 1) == [(True, line(0))]
        # the same id again starts afresh
        assert await store.batches.put(BATCH, 2, True, b"again")
        assert await store.batches.tally(BATCH) == Tally(1)
        assert await store.batches.stop(BATCH, "cancel", T0 + 1) == ("cancel", T0 + 1)


async def test_batches_are_independent(open_store):
    a, b = "batch_aaaa", "batch_bbbb"
    async with open_store() as store:
        assert await store.batches.put(a, 0, True, b"a0", cost_nano=1, input_tokens=1, output_tokens=1)
        assert await store.batches.put(b, 0, False, b"b0", cost_nano=2, input_tokens=2, output_tokens=2)
        assert await store.batches.put(b, 1, True, b"b1")
        assert await store.batches.stop(a, "cancel", T0) == ("cancel", T0)
        assert await store.batches.stored(a, 0, 2) == [(True, b"a0"), None]
        assert await store.batches.stored(b, 0, 2) == [(False, b"b0"), (True, b"b1")]
        assert await store.batches.tally(a) == Tally(1, 0, 1, 1, 1, "cancel", T0)
        assert await store.batches.tally(b) == Tally(2, 1, 2, 2, 2)
        await store.batches.drop(a)
        assert await store.batches.tally(b) == Tally(2, 1, 2, 2, 2)


async def test_a_file_made_before_batches_gains_their_tables(tmp_path):
    """A jobs.sqlite3 an older gateway wrote (its tables, none for batches) opens and takes results."""
    db = sqlite3.connect(tmp_path / "jobs.sqlite3")
    db.executescript("""
        CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
        INSERT INTO secrets VALUES ('signing', x'00');
        CREATE TABLE files (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, purpose TEXT NOT NULL, filename TEXT NOT NULL,
            size INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, lines INTEGER NOT NULL,
            endpoint TEXT NOT NULL);
    """)
    db.close()
    store = EmbeddedStore(tmp_path)
    await store.start()
    try:
        assert await store.secret("signing") == b"\x00"
        assert await store.batches.put(BATCH, 0, True, line(0), cost_nano=4)
        assert await store.batches.stored(BATCH, 0, 1) == [(True, line(0))]
        assert await store.batches.tally(BATCH) == Tally(1, 0, 4)
    finally:
        await store.close()


async def test_on_a_cluster_a_batchs_keys_share_a_slot_and_batches_spread():
    cluster = RedisBatchLines(Pool("redis://127.0.0.1:1", "gw:", 0.1, 1, "t", cluster=True))  # never asked
    keys = [cluster._keys(f"batch_{n:032x}") for n in range(64)]
    assert all(key_slot(lines.encode()) == key_slot(tally.encode()) for lines, tally in keys)
    assert len({key_slot(lines.encode()) for lines, _ in keys}) > 32
    assert cluster._keys("batch_1") == ("gw:{batch:batch_1}:lines", "gw:{batch:batch_1}:tally")
    plain = RedisBatchLines(Pool("redis://127.0.0.1:1", "gw:", 0.1, 1, "t"))
    assert plain._keys("batch_1") == ("gw:batch:batch_1:lines", "gw:batch:batch_1:tally")
    await cluster._pool.close()
    await plain._pool.close()
