"""The stored-responses contract (gateway/store/responses.py), run against both stores."""
from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import asynccontextmanager

from gateway.store import EmbeddedStore, ResponseRecord


def _record(id: str = "resp_1", owner: str = "key_a", data: bytes = b'{"output": []}') -> ResponseRecord:
    return ResponseRecord(id=id, owner=owner, created_at=1_767_000_000, data=data)


async def test_a_stored_response_reads_back_with_its_owner(open_store):
    async with open_store() as store:
        await store.responses.put(_record(), 60)
        assert await store.responses.get("resp_1") == _record()
        assert await store.responses.get("resp_unknown") is None


async def test_a_put_replaces_what_was_there(open_store):
    async with open_store() as store:
        await store.responses.put(_record(), 60)
        await store.responses.put(_record(owner="key_b", data=b'{"v": 2}'), 60)
        assert await store.responses.get("resp_1") == _record(owner="key_b", data=b'{"v": 2}')


async def test_delete_says_whether_there_was_one(open_store):
    async with open_store() as store:
        await store.responses.put(_record(), 60)
        assert await store.responses.delete("resp_1") is True
        assert await store.responses.get("resp_1") is None
        assert await store.responses.delete("resp_1") is False
        assert await store.responses.delete("resp_unknown") is False


async def test_a_response_expires_ttl_after_its_put(open_store):
    async with open_store() as store:
        await store.responses.put(_record("resp_short"), 0.2)
        await store.responses.put(_record("resp_long"), 60)
        assert await store.responses.get("resp_short") == _record("resp_short")
        await asyncio.sleep(0.3)
        assert await store.responses.get("resp_short") is None
        assert await store.responses.delete("resp_short") is False
        assert await store.responses.get("resp_long") == _record("resp_long")


async def test_a_put_renews_the_expiry(open_store):
    async with open_store() as store:
        await store.responses.put(_record(), 0.2)
        await store.responses.put(_record(), 60)
        await asyncio.sleep(0.3)
        assert await store.responses.get("resp_1") == _record()


async def test_stored_responses_outlive_the_store(open_store):
    async with open_store() as store:
        await store.responses.put(_record(), 60)
        await store.responses.put(_record("resp_gone"), 0.2)
    await asyncio.sleep(0.3)
    async with open_store() as again:
        assert await again.responses.get("resp_1") == _record()
        assert await again.responses.get("resp_gone") is None


async def test_a_record_of_several_mb_round_trips(open_store):
    big = _record(data=os.urandom(6 * 1024 * 1024))
    async with open_store() as store:
        await store.responses.put(big, 60)
        assert await store.responses.get("resp_1") == big


# -- the embedded store's file -------------------------------------------------

async def test_a_file_an_older_gateway_wrote_gains_the_table(tmp_path):
    old = sqlite3.connect(tmp_path / "jobs.sqlite3")
    old.execute("CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
    old.execute("INSERT INTO secrets VALUES ('links', ?)", (b"s" * 32,))
    old.commit()
    old.close()
    async with _embedded(tmp_path) as store:
        assert await store.secret("links") == b"s" * 32
        await store.responses.put(_record(), 60)
        assert await store.responses.get("resp_1") == _record()


def _expired_rows(path, n: int) -> None:
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO responses (id, owner, created_at, expires_at, data) VALUES (?, 'k', 0, 1, x'00')",
                       [(f"resp_old_{i}",) for i in range(n)])


def _ids(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT id FROM responses")}


async def test_expired_records_leave_the_embedded_file(tmp_path):
    async with _embedded(tmp_path) as store:
        await store.responses.put(_record("resp_kept"), 60)
    _expired_rows(tmp_path / "jobs.sqlite3", 250)
    async with _embedded(tmp_path) as store:      # starting sweeps them all, a step at a time
        assert _ids(tmp_path / "jobs.sqlite3") == {"resp_kept"}
        _expired_rows(tmp_path / "jobs.sqlite3", 10)
        await store.responses.put(_record("resp_new"), 60)     # each put sweeps a few
        assert len(_ids(tmp_path / "jobs.sqlite3")) < 12


@asynccontextmanager
async def _embedded(data_dir):
    store = EmbeddedStore(data_dir)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def test_puts_at_once_are_all_kept(open_store):
    """Concurrent puts share writes (embedded: one transaction for those that wait together);
    each put returns only once its own record reads back."""
    async with open_store() as store:
        async def put(i: int) -> ResponseRecord | None:
            await store.responses.put(ResponseRecord(f"resp_{i}", f"key_{i % 3}", i, b"x" * i), 60)
            return await store.responses.get(f"resp_{i}")
        got = await asyncio.gather(*(put(i) for i in range(40)))
        assert [(r.owner, r.data) for r in got if r] == [(f"key_{i % 3}", b"x" * i) for i in range(40)]
