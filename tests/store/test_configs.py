"""The config versions contract (gateway/store/configs.py), run against both stores."""
from __future__ import annotations

import time

from gateway.store import ConfigVersion


async def test_config_versions_are_compare_and_set(open_store):
    async with open_store() as store:
        assert await store.configs.latest() is None
        first = ConfigVersion(0, time.time(), "file", "seeded", "abc", b'{"a": 1}')
        assert await store.configs.put(first, 0) == 1
        assert await store.configs.put(first, 0) is None          # someone else came first
        assert await store.configs.put(ConfigVersion(0, time.time(), "admin", "b", "abc", b'{"a": 2}'), 1) == 2
        latest = await store.configs.latest()
        assert (latest.version, latest.author, latest.document, latest.file_hash) == (2, "admin", b'{"a": 2}', "abc")
        assert (await store.configs.version(1)).document == b'{"a": 1}'
        assert [v.version for v in await store.configs.versions(10)] == [2, 1]
        assert (await store.configs.versions(10))[0].document is None
        for n in range(2, 60):
            assert await store.configs.put(ConfigVersion(0, time.time(), "admin", str(n), "", b"{}"), n) == n + 1
        kept = await store.configs.versions(100)
        assert len(kept) == 50 and kept[0].version == 60 and await store.configs.version(1) is None


async def test_a_store_that_lost_its_versions_is_reseeded_under_the_running_number(open_store):
    async with open_store() as store:
        running = ConfigVersion(7, time.time(), "gateway", "reseeded", "abc", b'{"a": 7}')
        assert await store.configs.seed(running) is True                 # empty: takes version 7 as it is
        assert await store.configs.seed(running) is False                # a replica seeding the same number
        assert await store.configs.seed(ConfigVersion(5, time.time(), "gateway", "", "abc", b"{}")) is False
        latest = await store.configs.latest()
        assert latest.version == 7 and latest.config() == {"a": 7}
        assert await store.configs.put(ConfigVersion(0, time.time(), "admin", "b", "abc", b'{"a": 8}'), 7) == 8
        assert await store.configs.seed(ConfigVersion(9, time.time(), "gateway", "", "abc", b'{"a": 9}')) is True
        assert (await store.configs.latest()).config() == {"a": 9}       # a replica further ahead wins
