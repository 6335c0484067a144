"""The request log: one record per request, kept in the state store
(`store.requests`) for the admin API (`GET /admin/requests`, `/admin/stats`)
and the web console.

The request path appends one tuple to a bounded deque (`RequestLog.add`, from
`Exchange._count`): references to what the exchange holds already, no dict,
no JSON, no I/O (docs/performance.md, Request log); the attempts as the
router left them (a list only once one failed, else the target that
answered). Every `logging.requests.flush_s` a task takes what gathered, turns
it into records on a worker thread (headers decoded, the error's code read
from the error answer, the attempts listed, prompts and answers cut to
32 KiB) and writes them to the store, 250 to a batch; once a minute it
prunes (`keep_days`, `max_rows`). At shutdown it writes what is left.

Past `MOST_PENDING` records waiting (the store slow or down), the oldest are
dropped and counted in `gateway_request_log_dropped_total`; a batch the store
refused is tried again with the next, within the same bound.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from gateway.metrics import REQUEST_LOG_DROPPED
from gateway.store import RequestRecord, Retention, Store
from gateway.waiting import set_or_after

if TYPE_CHECKING:       # annotations only: the exchange and the runtime call into this module
    from gateway.exchange import Exchange
    from gateway.router import Attempt
    from gateway.routes import Target
    from gateway.runtime import Runtime

log = logging.getLogger("gateway")

Row = tuple[Any, ...]       # what `add` appends; `_record` takes it apart

MOST_PENDING = 100_000      # records a process holds unwritten (each a tuple of references: ~200 bytes)
MOST_RETRIED_TEXT = 64 << 20    # prompt and answer bytes kept for a retry while the store is down
PER_BATCH = 250            # records per store call: a Redis script or SQLite transaction stays short
CUT_AT = 32 * 1024          # prompt and answer bytes kept per record
PRUNE_EVERY_S = 60.0
_CLIENT_GONE = 499


class RequestLog:
    """One process's records on their way to the store."""
    __slots__ = ("pending", "most", "_failed", "_store", "_current", "_task", "_stopping", "_writing",
                 "_pruned_at", "_failing")

    def __init__(self, most: int = MOST_PENDING) -> None:
        self.most = most
        self.pending: deque[Row] = deque(maxlen=most)     # a full deque drops its oldest as one more goes in
        self._failed: list[RequestRecord] = []              # refused by the store: tried again first
        self._store: Store | None = None
        self._current: Callable[[], Runtime] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._writing = asyncio.Lock()                       # the timer's flush and an admin read's, one at a time
        self._pruned_at = 0.0
        self._failing = False

    def add(self, x: Exchange, latency_s: float, overhead_s: float | None, prompts: bool) -> None:
        """The request path's part: one tuple appended (the answer's body is kept for an error's code,
        or with `prompts`; the request's data only with `prompts`)."""
        pending = self.pending
        if len(pending) == self.most:
            REQUEST_LOG_DROPPED.inc()
        req = x.req
        data = x.data
        status = x.status
        pending.append((time.time(), req.id, x.key, x.model, x.provider, status, x.attempts, x.attempt_log, x.target,
                        x.upstream_s, latency_s, overhead_s, x.usage, x.cost, x.dialect.endpoint,
                        data is not None and data.get("stream") is True, x.cache_hit, req.sent_headers,
                        req.sent_body if prompts or status >= 400 else None, data if prompts else None, prompts))

    # -- off the request path --------------------------------------------------------

    def start(self, store: Store, current: Callable[[], Runtime]) -> None:
        """Write to `store` every flush_s of the config serving now (`current()`)."""
        self._store, self._current = store, current
        self._task = asyncio.get_running_loop().create_task(self._run(), name="request-log")

    def _settings(self) -> Any:
        assert self._current is not None
        return self._current().config.logging.requests

    async def _run(self) -> None:
        # Stopped by `_stopping` between flushes, never cancelled: a batch taken is always written or kept.
        while not self._stopping.is_set():
            await set_or_after(self._stopping, self._settings().flush_s)
            try:
                await self.flush()
                if not self._stopping.is_set() and time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
                    self._pruned_at = time.monotonic()
                    await self.prune()
                if self._failing:
                    log.info("request log records are written again")
                    self._failing = False
            except Exception as e:      # StoreDown, a full disk: keep the records, log the outage once
                if not self._failing:
                    log.warning("request log records could not be written, will try again: %s", e)
                self._failing = True

    async def flush(self) -> None:
        """Write what gathered now (what the store refuses is kept for the next try, and raised)."""
        store = self._store
        if store is None:
            return
        async with self._writing:
            batch, self.pending = list(self.pending), deque(maxlen=self.most)
            failed, self._failed = self._failed, []
            retention = self._retention()
            # Records are made PER_BATCH rows at a time, each lot written before the next is made: a
            # second of a busy gateway's records made at once was its memory's peak (~2.5 KB each),
            # which the allocator keeps after.
            for i in range(0, len(failed), PER_BATCH):
                await self._add(store, failed[i:i + PER_BATCH], retention, failed[i + PER_BATCH:], batch)
            for i in range(0, len(batch), PER_BATCH):
                records = await asyncio.to_thread(_records, batch[i:i + PER_BATCH])
                await self._add(store, records, retention, [], batch[i + PER_BATCH:])

    async def _add(self, store: Store, records: list[RequestRecord], retention: Retention,
                   made: list[RequestRecord], rows: list[Row]) -> None:
        """Write `records`; if the store refuses them, keep them and what was to follow
        (`made` records, then `rows` still to be made) for the next try."""
        try:
            await store.requests.add(records, retention)
        except BaseException:
            self._keep(records + made + (await asyncio.to_thread(_records, rows) if rows else []))
            raise

    async def prune(self) -> int:
        assert self._store is not None
        return await self._store.requests.prune(self._retention(), int(time.time() * 1000))

    def _retention(self) -> Retention:
        settings = self._settings()
        return Retention(settings.keep_days, settings.max_rows)

    def _keep(self, records: list[RequestRecord]) -> None:
        """Keep the newest of `records` for the next try: at most `most`, and MOST_RETRIED_TEXT of prompts."""
        kept: list[RequestRecord] = []
        text = 0
        for r in reversed(records):
            text += len(r.prompt or "") + len(r.answer or "")
            if len(kept) >= self.most or text > MOST_RETRIED_TEXT:
                break
            kept.append(r)
        if len(kept) < len(records):
            REQUEST_LOG_DROPPED.inc((), len(records) - len(kept))
        kept.reverse()
        self._failed = kept

    async def close(self) -> None:
        """Stop the timer and write what is left."""
        if self._store is None:
            return
        if self._task is not None:
            self._stopping.set()        # the task writes what gathered once more, then ends
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if (self.pending or self._failed) and not self._failing:    # added while it pruned (a store down: not again)
            try:
                await self.flush()
            except Exception:
                pass
        if self.pending or self._failed:
            log.warning("%d request log records could not be written at shutdown",
                        len(self.pending) + len(self._failed))


# -- rows into records (on a worker thread) ----------------------------------------------

def _records(rows: Iterable[Row]) -> list[RequestRecord]:
    return [_record(*row) for row in rows]


def _record(at: float, request_id: bytes, key: Any, model: str, provider: str, status: int, attempts: int,
            attempt_log: list[Attempt] | None, target: Target | None, upstream_s: float, latency_s: float,
            overhead_s: float | None, usage: Any, cost: int, endpoint: str, stream: bool, cache_hit: bool,
            sent_headers: Any, body: bytes | None, data: dict[str, Any] | None, prompts: bool) -> RequestRecord:
    rid = request_id.decode("latin-1")
    headers = {"x-request-id": rid}
    headers.update((k.decode("latin-1"), v.decode("latin-1")) for k, v in sent_headers)
    return RequestRecord(
        round(at * 1000), rid, key.id if key is not None else "", key.name if key is not None else "",
        model, provider, status, attempts, round(latency_s * 1000, 3),
        None if overhead_s is None else round(overhead_s * 1000, 3),
        usage.prompt_tokens if usage is not None else 0, usage.completion_tokens if usage is not None else 0,
        cost, _error_code(status, body), endpoint, stream, cache_hit, headers,
        _prompt(data) if prompts and data is not None else None,
        _cut(body) if prompts and body is not None else None,
        _attempts(attempt_log, target, upstream_s))


def _attempts(attempt_log: list[Attempt] | None, target: Target | None, upstream_s: float) -> list[dict[str, Any]]:
    """Each upstream attempt. The router lists them only once one failed (gateway/router.py): without
    a list, a routed request's one attempt is its target answering, for all the time spent upstream."""
    if attempt_log is None:
        if target is None:      # none made: refused before routing, or a cache hit
            return []
        return [{"provider": target.provider.name, "model": target.model, "status": 200, "error": None,
                 "ms": round(upstream_s * 1000, 3)}]
    return [{"provider": a.provider, "model": a.model, "status": a.status, "error": a.error,
             "ms": round(a.seconds * 1000, 3)} for a in attempt_log]


def _error_code(status: int, body: bytes | None) -> str | None:
    """A failed request's code, as its error answer gave it (or the error's type where the API
    has no codes, as Anthropic's Messages API)."""
    if status < 400:
        return None
    if status == _CLIENT_GONE:
        return "client_gone"
    try:
        error = orjson.loads(body or b"{}").get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return str(code)[:128] if code else None


def _prompt(data: dict[str, Any]) -> str | None:
    """The request's messages (chat, and every API translated to it) or input (embeddings), as JSON."""
    for name in ("messages", "input", "prompt"):
        if name in data:
            return _cut(orjson.dumps(data[name], default=str))
    return None


def _cut(text: bytes) -> str:
    if len(text) <= CUT_AT:
        return text.decode(errors="replace")
    return text[:CUT_AT].decode(errors="ignore") + f"… [{len(text) - CUT_AT} more bytes]"
