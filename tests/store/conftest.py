"""Every store behind one fixture (embedded, one Redis, a Redis Cluster), so each
part's contract suite (test_limits.py, test_ledger.py, test_cache.py, test_jobs.py,
test_queues.py, test_outbox.py, test_configs.py, test_workers.py, test_store.py)
runs against each; and
`async def` tests run on a fresh event loop."""
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


@pytest.fixture(params=["embedded", "redis", "redis-cluster"])
def open_store(request, tmp_path):
    """`async with open_store() as store`: a started store, closed at the end; opened
    again, it sees what the last one left (the same data_dir, the same Redis or cluster)."""
    if request.param == "embedded":
        def make():
            return EmbeddedStore(tmp_path)
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")

        def make():
            return RedisStore(url, timeout_s=2.0)
    else:
        cluster_url = request.getfixturevalue("redis_cluster").url

        def make():
            return RedisStore(cluster_url, timeout_s=2.0, cluster=True)

    @asynccontextmanager
    async def opened():
        store = make()
        await store.start()
        try:
            yield store
        finally:
            await store.close()
    return opened
