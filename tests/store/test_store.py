"""What the store itself does (gateway/store/base.py), run against both stores:
it answers a ping, and keeps secrets every replica shares."""
from __future__ import annotations


async def test_the_store_answers_a_ping(open_store):
    async with open_store() as store:
        assert await store.ping()


async def test_a_secret_is_made_once_and_shared(open_store):
    async with open_store() as one, open_store() as two:
        s = await one.secret("links")
        assert isinstance(s, bytes) and len(s) == 32
        assert await two.secret("links") == s
        assert await one.secret("other") != s
    async with open_store() as later:
        assert await later.secret("links") == s
