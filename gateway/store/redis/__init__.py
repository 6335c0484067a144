"""The Redis store: any number of gateway replicas share limits, leases, budgets,
the spend ledger, the response cache, stored responses, video jobs, files'
records, batches' results and config versions through one Redis. Nothing else
in the gateway talks to Redis.

The limits' scripts (every request's admission and settlement) go over one
pipelined connection, batched per turn of the event loop (pipe.py,
limits.py). Two pools of connections serve the rest: the request path's
(cache, stored responses, ledger reports) with the outage threshold as its
timeout, and a smaller one for jobs, files, batches' results, config versions,
workers and secrets with a longer one: they (and the request log's queries) are off the chat path, a claim may scan a
pending list, and a slow job call must not take connections the request path needs. The request
log's batches go on a pipelined connection of their own.

Keys are under a prefix (`gw:` by default); each part's module lists its own,
and `secret:<name>` (STRING, 32 random bytes) is here. On Redis Cluster, the
parts whose keys change together put them under a hash tag (cluster.py), and
each batch's results under a tag of their own (batches.py).
"""
from __future__ import annotations

import logging
import os

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from gateway.store.base import Store, StoreDown
from gateway.store.redis.admin import RedisAudit, RedisSessions
from gateway.store.redis.base import Pool, talking
from gateway.store.redis.batches import RedisBatchLines
from gateway.store.redis.cache import RedisCache
from gateway.store.redis.cluster import CONFIG, FILES, JOBS, LIMITS, REQUESTS, cluster_url
from gateway.store.redis.configs import RedisConfigs
from gateway.store.redis.files import RedisFileRecords
from gateway.store.redis.jobs import RedisJobs
from gateway.store.redis.ledger import RedisLedger
from gateway.store.redis.limits import RedisLimits
from gateway.store.redis.pipe import Pipe
from gateway.store.redis.requests import RedisRequests
from gateway.store.redis.responses import RedisResponses
from gateway.store.redis.workers import RedisWorkers

log = logging.getLogger("gateway.store")

_CONNECTIONS = 128       # per process; a round trip holds one for well under a millisecond
_JOB_CONNECTIONS = 16
_JOB_TIMEOUT_S = 5.0


class RedisStore(Store):
    def __init__(self, url: str, timeout_s: float = 0.05, prefix: str = "gw:", grants: bool = True,
                 cluster: bool = False) -> None:
        url, cluster = cluster_url(url, cluster)
        self._fast = Pool(url, prefix, timeout_s, _CONNECTIONS, "gateway", cluster)
        self._slow = Pool(url, prefix, _JOB_TIMEOUT_S, _JOB_CONNECTIONS, "gateway-jobs", cluster)
        limits = self._fast.part(LIMITS)
        # The request path's scripts go through one pipelined connection (pipe.py), on Redis
        # Cluster to the primary serving the limits' slot.
        self._pipe = Pipe(url, timeout_s, "gateway-requests", key_slot(limits.prefix.encode()) if cluster else None)
        self.limits = self._limits = RedisLimits(limits, self._pipe, grants)
        self.ledger = RedisLedger(limits, self._limits.flush)
        self.cache = RedisCache(self._fast)
        # Stored responses are read before and written after each Responses API request, at chat
        # rates, like the cache: the request path's pool, not the 16 job connections behind claims
        # that scan pending lists. A big record holds a connection for milliseconds (4 MB on
        # loopback: 3.5 ms to put, 9 ms to get), well inside `state.redis_timeout_ms`'s default.
        self.responses = RedisResponses(self._fast)
        self.jobs = RedisJobs(self._slow.part(JOBS))
        self.configs = RedisConfigs(self._slow.part(CONFIG))
        self.workers = RedisWorkers(self._slow.part(JOBS))
        self.files = RedisFileRecords(self._slow.part(FILES))     # off the request path, as jobs are
        # Batches' results: off the request path too. No part's tag: each batch's keys carry their own
        # (batches.py), so on Redis Cluster batches spread over the shards.
        self.batches = RedisBatchLines(self._slow)
        # The request log writes a batch a second per replica and answers the admin API: off the request
        # path. Its batches go on a pipelined connection of their own, made whole off the event loop.
        requests = self._slow.part(REQUESTS)
        self._log_pipe = Pipe(url, _JOB_TIMEOUT_S, "gateway-log",
                              key_slot(requests.prefix.encode()) if cluster else None)
        self.requests = RedisRequests(requests, self._log_pipe)
        self.sessions = RedisSessions(self._slow)
        self.audit = RedisAudit(self._slow)

    async def start(self) -> None:
        # A Redis that is down at start is the same outage as one that goes down later:
        # the limiter's policy applies, and the scripts load on first use.
        try:
            await self._limits.load()
            await self._pipe.connect()
        except StoreDown as e:
            log.warning("Redis is not reachable at start (%s); retried on every request", e)

    async def close(self) -> None:
        await self._limits.close()
        await self._pipe.close()
        await self._log_pipe.close()
        await self._fast.close()
        await self._slow.close()

    async def ping(self) -> bool:
        try:
            with talking():
                if self._fast.cluster:      # the cluster answers if any node does (each shard fails over alone)
                    return bool(await self._fast.redis.ping(target_nodes=RedisCluster.RANDOM))
                return bool(await self._fast.redis.ping())
        except StoreDown:
            return False

    async def secret(self, name: str) -> bytes:
        key = self._slow.prefix + "secret:" + name
        with talking():
            # SET NX then GET in one trip: whichever replica came first made it.
            pipe = self._slow.redis.pipeline(transaction=False)
            pipe.set(key, os.urandom(32), nx=True)
            pipe.get(key)
            _, value = await pipe.execute()
        return value
