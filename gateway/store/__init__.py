"""Shared state behind a few small interfaces, one idea each:

  store.limits    rate-limit windows, concurrency leases and budget holds (limits.py)
  store.ledger    the spend ledger (ledger.py)
  store.cache     the response cache (cache.py)
  store.jobs      video jobs, their work queues and the webhook outbox (jobs.py)
  store.configs   versions of the running config (configs.py)
  store.workers   which workers are alive (workers.py)
  store.responses stored responses of the Responses API (responses.py)
  store.files     the records of /v1/files' files (files.py; their bytes are in the asset store)
  store.batches   running batches' results, a line each, and their tallies (batches.py)
  store.requests  the request log: a record per request, and its stats (requests.py)
  store.sessions  the console's sign-in sessions (admin.py)
  store.audit     the audit trail of admin actions and failed sign-ins (admin.py)

plus `start`, `close`, `ping` and shared `secret`s on the store itself (base.py).

Two implementations of every part: `embedded/` (in-process + SQLite under
`state.data_dir`) and `redis/` (any number of replicas sharing one Redis).
Nothing else talks to Redis. Every decision on the request path is one
`store.limits.admit` call: one atomic step (one Lua script on Redis) that
checks and charges all of a request's limits.
"""
from __future__ import annotations

from gateway.config.schema import StateConfig
from gateway.store.admin import Audit, AuditEntry, Session, Sessions
from gateway.store.base import Store, StoreDown
from gateway.store.batches import BatchLines, Tally
from gateway.store.cache import Cache
from gateway.store.configs import Configs, ConfigVersion
from gateway.store.embedded import EmbeddedStore
from gateway.store.files import FileRecord, FileRecords
from gateway.store.jobs import TERMINAL, Claim, Delivery, JobRecord, Jobs
from gateway.store.ledger import LEDGER_FIELDS, Ledger, LedgerEntry
from gateway.store.limits import Admission, Hold, InUse, Lease, Limits, Settlement, Verdict, Window, budget_span
from gateway.store.request_stats import Rollup, Stats
from gateway.store.requests import BadCursor, RequestFilter, RequestPage, RequestRecord, Requests, Retention
from gateway.store.responses import ResponseRecord, Responses
from gateway.store.workers import Workers

__all__ = [
    "Store", "StoreDown", "open_store", "EmbeddedStore",
    "Limits", "Admission", "Window", "Lease", "Hold", "Verdict", "Settlement", "InUse", "budget_span",
    "Ledger", "LedgerEntry", "LEDGER_FIELDS",
    "Cache",
    "Jobs", "JobRecord", "Claim", "Delivery", "TERMINAL",
    "Configs", "ConfigVersion",
    "Workers",
    "Responses", "ResponseRecord",
    "FileRecords", "FileRecord",
    "BatchLines", "Tally",
    "Sessions", "Session", "Audit", "AuditEntry",
    "Requests", "RequestRecord", "RequestFilter", "RequestPage", "Retention", "BadCursor", "Rollup", "Stats",
]


def open_store(state: StateConfig) -> Store:
    """The store a config's `state:` names: Redis when `redis_url` is set, else embedded."""
    if state.redis_url:
        # Loaded only when named: redis-py costs a process ~19 MB it would not use (embedded mode).
        # gateway/store/redis imports nothing that imports this package's loader, so no circle hides here.
        from gateway.store.redis import RedisStore
        return RedisStore(state.redis_url, timeout_s=state.redis_timeout_ms / 1000, grants=state.redis_grants,
                          cluster=state.redis_cluster)
    return EmbeddedStore(state.data_dir)
