"""Both stores behind one fixture, and `async def` tests run on a fresh event loop."""
from __future__ import annotations

import asyncio
import inspect
from contextlib import asynccontextmanager

import pytest

from gateway.store.embedded import EmbeddedStore
from gateway.store.redis import RedisStore


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(asyncio.wait_for(pyfuncitem.obj(**args), 30))
        return True
    return None


@pytest.fixture(params=["embedded", "redis"])
def open_store(request, tmp_path):
    """`async with open_store() as store`: a started store, closed at the end; opened
    again, it sees what the last one left (the same data_dir, the same Redis)."""
    if request.param == "embedded":
        def make():
            return EmbeddedStore(tmp_path)
    else:
        url = request.getfixturevalue("redis_url")

        def make():
            return RedisStore(url, timeout_s=2.0)

    @asynccontextmanager
    async def opened():
        store = make()
        await store.start()
        try:
            yield store
        finally:
            await store.close()
    return opened
