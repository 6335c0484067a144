from __future__ import annotations

from functools import partial

import pytest

from tests.harness import Gateway, Loop, closed_after
from tests.upstreams.openai_fake import FakeOpenAI


@pytest.fixture(scope="session")
def loop():
    lp = Loop()
    yield lp
    lp.stop()


@pytest.fixture
def start_gateway(loop):
    """start_gateway(config) -> a running Gateway, closed after the test."""
    with closed_after(partial(Gateway, loop)) as start:
        yield start


@pytest.fixture
def fake_openai(loop):
    """fake_openai(name) -> a FakeOpenAI upstream on loopback, closed after the test."""
    with closed_after(partial(FakeOpenAI, loop)) as make:
        yield make


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session (started on first use)."""
    from tests.redis_server import RedisServer
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server):
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster_session():
    """One real Redis Cluster (3 primaries, 3 replicas) for the session (started on first use)."""
    from tests.redis_cluster import RedisCluster
    cluster = RedisCluster()
    yield cluster
    cluster.close()


@pytest.fixture
def redis_cluster(redis_cluster_session):
    """The session's Redis Cluster, emptied for this test. Kill no node in it: use
    fresh_redis_cluster for that."""
    redis_cluster_session.flush()
    return redis_cluster_session


@pytest.fixture
def fresh_redis_cluster():
    """A Redis Cluster of this test's own, that it may kill nodes of; closed after it.
    Name it before start_gateway so that its gateways shut down while it still runs."""
    from tests.redis_cluster import RedisCluster
    cluster = RedisCluster()
    yield cluster
    cluster.close()
