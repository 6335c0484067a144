"""Redis Cluster: which URLs name one, where each part's keys go, and which node
serves a slot.

A Lua script, a MULTI/EXEC or a multi-key command runs on one node, so every
key that such a step touches must hash to one slot. The keys of each part of
the store that are changed together go under one hash tag, in cluster mode
only (a single Redis keeps its key names):

  limits     windows, leases, budgets, the spend ledger: one admission checks a
             key's and its model's windows, its lease and its budget atomically,
             and settling writes the ledger row in the same step
  jobs       video jobs, their queues and outbox, webhook deliveries, workers:
             a state change moves a job between its record, its queue and its lists
  config     config versions
  requests   the request log
  files      files' records: a file's record, its owner's lists and the expiry index
  batch:<id> one batch's results and tally (a tag per batch: batches spread over the
             shards, and a batch may hold hundreds of MB)

Keys read and written alone (the response cache, stored responses, sign-in
sessions, the audit trail, secrets) keep no tag, so they spread over every
shard. A part's tag puts it on one shard: the limits' admissions all go to one
primary (docs/capacity.md says what that allows).
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

LIMITS, JOBS, CONFIG, REQUESTS, FILES = "limits", "jobs", "config", "requests", "files"


def cluster_url(url: str, switch: bool = False) -> tuple[str, bool]:
    """(the URL as a client takes it, whether it names a cluster): `redis+cluster://` and
    `rediss+cluster://` name one, as does any redis URL with `state.redis_cluster: true`."""
    parts = urlsplit(url)
    plain = _CLUSTER_SCHEMES.get(parts.scheme)
    if plain is None:
        return url, switch
    return urlunsplit(parts._replace(scheme=plain)), True


def tagged(prefix: str, tag: str) -> str:
    """The prefix of a part's keys in cluster mode: one hash slot for the whole part."""
    return f"{prefix}{{{tag}}}:"


def slot_owner(slots: list, slot: int) -> tuple[str, int] | None:
    """(host, port) of the primary serving `slot`, from a CLUSTER SLOTS reply."""
    for row in slots:
        if row[0] <= slot <= row[1] and len(row) > 2:
            return _address(row[2])
    return None


def cluster_nodes(slots: list) -> list[tuple[str, int]]:
    """Every node a CLUSTER SLOTS reply names, primaries first: where to ask next time."""
    primaries = [_address(row[2]) for row in slots if len(row) > 2]
    replicas = [_address(node) for row in slots for node in row[3:]]
    return list(dict.fromkeys(primaries + replicas))


def _address(node: list) -> tuple[str, int]:
    """(host, port) of one node of a CLUSTER SLOTS row."""
    host = node[0].decode() if isinstance(node[0], bytes) else node[0]
    return host, int(node[1])
