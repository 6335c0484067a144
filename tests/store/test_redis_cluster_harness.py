"""The Redis Cluster test harness (tests/redis_cluster.py) itself: it forms, a
cluster client works against it, and a killed primary's replica takes over."""
from __future__ import annotations

import redis
from redis.cluster import RedisCluster as ClusterClient


def test_cluster_serves_keys_in_every_slot_range(redis_cluster):
    assert len(redis_cluster.primaries()) == 3
    client = ClusterClient.from_url(redis_cluster.url, decode_responses=True)
    try:
        keys = [f"key-{i}" for i in range(30)]
        # Thirty keys land on every primary, so each shard is written and read.
        assert {redis_cluster.primary_for_key(k) for k in keys} == set(redis_cluster.primaries())
        for k in keys:
            client.set(k, k.upper())
        assert [client.get(k) for k in keys] == [k.upper() for k in keys]
    finally:
        client.close()


def test_killed_primary_is_replaced_by_its_replica(fresh_redis_cluster):
    cluster = fresh_redis_cluster
    old = cluster.primary_for_key("survivor")
    replica = cluster.replica_of(old)
    # SET then WAIT on one connection: the write is on the replica before the kill.
    with redis.Redis(host="127.0.0.1", port=old) as primary:
        primary.set("survivor", "still here")
        assert primary.execute_command("WAIT", 1, 1000) == 1
    cluster.kill(old)
    new = cluster.wait_promoted(old)
    assert new == replica
    assert cluster.primary_for_key("survivor") == new
    assert old not in cluster.primaries()
    client = ClusterClient.from_url(cluster.url, decode_responses=True)
    try:
        assert client.get("survivor") == "still here"
    finally:
        client.close()
