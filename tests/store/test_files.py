"""The files' records contract (gateway/store/files.py), run against every store
(embedded, one Redis, a Redis Cluster)."""
from __future__ import annotations

from gateway.store import FileRecord

T0 = 1_767_000_000      # unix seconds


def record(n: int, owner: str = "key_00000000000000aa", purpose: str = "batch", *, at: int = T0,
           expires_at: int | None = None, lines: int = 0, endpoint: str = "") -> FileRecord:
    """The n-th record made in second `at`: its id carries that time in ms, as the gateway makes ids."""
    ms = at * 1000 + n
    return FileRecord(f"file-{ms:012x}{n:016x}", owner, purpose, f"input-{n}.jsonl", 100 + n, at,
                      expires_at=expires_at, lines=lines, endpoint=endpoint)


async def test_a_record_reads_back_whole(open_store):
    made = record(1, expires_at=T0 + 3600, lines=200, endpoint="/v1/chat/completions")
    plain = record(2, purpose="user_data")
    async with open_store() as store:
        await store.files.create(made)
        await store.files.create(plain)
        assert await store.files.get(made.id) == made
        assert await store.files.get(plain.id) == plain
        assert await store.files.get("file-unknown") is None


async def test_an_owners_files_page_by_creation_both_ways(open_store):
    mine = [record(n) for n in range(7)]
    async with open_store() as store:
        for r in mine:
            await store.files.create(r)
        await store.files.create(record(9, owner="key_00000000000000bb"))
        page, more = await store.files.page(mine[0].owner, None, None, 3, "desc", T0)
        assert page == mine[::-1][:3] and more
        page, more = await store.files.page(mine[0].owner, None, page[-1].id, 3, "desc", T0)
        assert page == mine[::-1][3:6] and more
        page, more = await store.files.page(mine[0].owner, None, page[-1].id, 3, "desc", T0)
        assert page == mine[:1] and not more
        page, more = await store.files.page(mine[0].owner, None, None, 10_000, "asc", T0)
        assert page == mine and not more
        page, more = await store.files.page(mine[0].owner, None, mine[4].id, 2, "asc", T0)
        assert page == mine[5:7] and not more
        assert await store.files.page("key_00000000000000cc", None, None, 10, "desc", T0) == ([], False)


async def test_files_of_one_second_sort_by_id_after_their_second(open_store):
    """created_at, then id: a file of a later second comes after every file of an earlier one."""
    early = [record(n, at=T0) for n in (5, 900)]
    late = [record(n, at=T0 + 1) for n in (1, 2)]
    async with open_store() as store:
        for r in (late[1], early[1], late[0], early[0]):
            await store.files.create(r)
        page, _ = await store.files.page(early[0].owner, None, None, 10, "asc", T0)
        assert page == early + late
        assert [(r.created_at, r.id) for r in page] == sorted((r.created_at, r.id) for r in page)


async def test_purpose_lists_only_that_purpose_with_its_own_paging(open_store):
    batch = [record(n, purpose="batch") for n in range(0, 10, 2)]
    other = [record(n, purpose="user_data") for n in range(1, 10, 2)]
    async with open_store() as store:
        for r in sorted(batch + other, key=lambda r: r.id):
            await store.files.create(r)
        page, more = await store.files.page(batch[0].owner, "batch", None, 2, "asc", T0)
        assert page == batch[:2] and more
        page, more = await store.files.page(batch[0].owner, "batch", page[-1].id, 10, "asc", T0)
        assert page == batch[2:] and not more
        page, more = await store.files.page(batch[0].owner, "user_data", None, 10, "desc", T0)
        assert page == other[::-1] and not more
        assert await store.files.page(batch[0].owner, "vision", None, 10, "desc", T0) == ([], False)
        page, _ = await store.files.page(batch[0].owner, None, None, 100, "asc", T0)
        assert page == sorted(batch + other, key=lambda r: r.id)


async def test_an_expired_record_is_not_listed_but_can_still_be_read(open_store):
    short = record(1, expires_at=T0 + 10)
    kept = record(2)
    later = record(3, expires_at=T0 + 100)
    async with open_store() as store:
        for r in (short, kept, later):
            await store.files.create(r)
        page, _ = await store.files.page(kept.owner, None, None, 10, "asc", T0 + 9)
        assert page == [short, kept, later]
        page, more = await store.files.page(kept.owner, None, None, 1, "asc", T0 + 10)
        assert page == [kept] and more       # the expired one is skipped, not counted
        page, _ = await store.files.page(kept.owner, "batch", None, 10, "asc", T0 + 100)
        assert page == [kept]
        assert await store.files.get(short.id) == short      # the caller checks expires_at (it has the clock)
        assert short.expired(T0 + 10) and not short.expired(T0 + 9) and not kept.expired(T0 + 10**9)


async def test_expired_gives_ids_past_their_time_until_they_are_deleted(open_store):
    records = [record(1, expires_at=T0 + 30), record(2, expires_at=T0 + 10), record(3), record(4, expires_at=T0 + 20),
               record(5, expires_at=T0 + 500)]
    async with open_store() as store:
        for r in records:
            await store.files.create(r)
        assert await store.files.expired(T0, 10) == []
        assert await store.files.expired(T0 + 30, 10) == [records[1].id, records[3].id, records[0].id]
        assert await store.files.expired(T0 + 30, 2) == [records[1].id, records[3].id]
        assert await store.files.expired(T0 + 30, 10) == [records[1].id, records[3].id, records[0].id]  # still there
        for file_id in await store.files.expired(T0 + 30, 10):
            assert await store.files.delete(file_id)
        assert await store.files.expired(T0 + 30, 10) == []
        assert await store.files.expired(T0 + 10**6, 10) == [records[4].id]


async def test_delete_says_whether_there_was_one_and_takes_it_off_every_list(open_store):
    a, b = record(1, expires_at=T0 + 5), record(2, purpose="user_data")
    async with open_store() as store:
        await store.files.create(a)
        await store.files.create(b)
        assert await store.files.delete(a.id) is True
        assert await store.files.delete(a.id) is False
        assert await store.files.delete("file-unknown") is False
        assert await store.files.get(a.id) is None
        assert await store.files.page(a.owner, None, None, 10, "desc", T0) == ([b], False)
        assert await store.files.page(a.owner, "batch", None, 10, "desc", T0) == ([], False)
        assert await store.files.expired(T0 + 100, 10) == []


async def test_a_page_of_many_comes_whole(open_store):
    records = [record(n) for n in range(300)]
    async with open_store() as store:
        for r in records:
            await store.files.create(r)
        page, more = await store.files.page(records[0].owner, None, None, 10_000, "desc", T0)
        assert page == records[::-1] and not more
        page, more = await store.files.page(records[0].owner, "batch", records[100].id, 150, "asc", T0)
        assert page == records[101:251] and more


async def test_records_outlive_the_store(open_store):
    made = record(1, expires_at=T0 + 60, lines=3, endpoint="/v1/embeddings")
    async with open_store() as store:
        await store.files.create(made)
    async with open_store() as again:
        assert await again.files.get(made.id) == made
        assert await again.files.page(made.owner, "batch", None, 5, "asc", T0) == ([made], False)
        assert await again.files.expired(T0 + 60, 5) == [made.id]
