"""Batches run inside the gateway, on the job store's queues and leases.

A batch is a job on the `@batches` queue: one process at a time holds it (its
coordinator) and sees it through: it reads the input file once to cut it into
parts of `part_lines` requests (noting where each starts), queues the parts,
watches the tally, and when every request is answered (or the batch is
cancelled or expires) writes the output and error files and ends the batch
with its webhook event, in one store step.

Each part is a job on the `@batch-parts` queue, taken by any process (every
replica works on a batch). A part's requests go through the gateway's own
dispatch as the batch's key (lines.py, inside.py): routing, failover, limits, cost and
the request log, as a client's request would. Each answer is stored once
(`store.batches.put`: the first result of a line wins) before the next look
at what is left.

A process that dies stops renewing its leases: its parts and batches are taken
over by another once they lapse, and the taker runs only the lines with no
stored result. A line that was in flight is sent again (its first answer was
never stored); no line is answered twice in the output. A key's refusal for
rate (429 `rate_limit_exceeded`) is waited out, not recorded: batch work yields
to the key's limits and goes on when there is room.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import aclosing, suppress
from typing import Any

import orjson

from gateway.auth import Key
from gateway.batches import native, protocol
from gateway.batches.batch import COORDINATORS, PARTS, Batch, Part, is_batch_id, listed_under, new_id
from gateway.batches.inside import Http
from gateway.batches.lines import run as run_line
from gateway.config.schema import BatchesConfig
from gateway.errors import ApiError, bad_request
from gateway.files.service import Files
from gateway.leases import renewing
from gateway.metrics import BATCH_REQUESTS, BATCHES
from gateway.runtime import Runtime
from gateway.store import Claim, FileRecord, Store, StoreDown, Tally
from gateway.waiting import set_or_after
from gateway.webhooks.delivery import Sender, deliveries_for

log = logging.getLogger("gateway.batches")

_LOOK_S = 1.0              # between looks at an empty queue (a batch made here wakes this process at once)
_WATCH_S = 0.5             # a coordinator's look at its batch's tally
_STOP_SEEN_S = 1.0         # a part's look at whether its batch was asked to stop
_MOST_COORDINATED = 256    # batches one process sees through at once
_READ_AHEAD = 1000         # stored results read at a time when writing the files
_BOM = b"\xef\xbb\xbf"


class _Lost(Exception):
    """The lease was taken over (or the job is gone): stop without writing more."""


class Batches:
    def __init__(self, store: Store, files: Files, sender: Sender, runtime: Callable[[], Runtime], http: Http,
                 consumer: str) -> None:
        self.store = store
        self.files = files
        self.sender = sender
        self.runtime = runtime
        self.http = http
        self.consumer = consumer
        self._tasks: list[asyncio.Task] = []
        self._wake_coordinators = asyncio.Event()
        self._wake_parts = asyncio.Event()
        self._batch_slots: dict[str, asyncio.Semaphore] = {}
        self._key_slots: dict[str, asyncio.Semaphore] = {}
        self._slot_users: Counter[str] = Counter()
        self._stops: dict[str, tuple[float, str | None]] = {}    # batch id -> (when looked, stop asked)

    def config(self) -> BatchesConfig:
        return self.runtime().config.batches

    def lease_s(self) -> float:
        return self.runtime().config.videos.job_lease_s

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._take(COORDINATORS, lambda: _MOST_COORDINATED, self._coordinate,
                                           self._wake_coordinators), name="batch-coordinators"),
            asyncio.create_task(self._take(PARTS, lambda: self.config().parts_at_once, self._run_part,
                                           self._wake_parts), name="batch-parts"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- the API's side ---------------------------------------------------------------------

    async def create(self, key: Key, asked: protocol.CreateBatch) -> Batch:
        record = await self.files.find(key.id, asked.input_file_id)
        if record is None:
            raise ApiError(404, f"No such File object: {asked.input_file_id[:100]}", param="input_file_id",
                           code="not_found")
        if record.purpose != "batch":
            raise bad_request(f"File {record.id} was uploaded with purpose '{record.purpose}'; a batch's input "
                              f"file is uploaded with purpose 'batch'.", param="input_file_id", code="invalid_file")
        if record.endpoint != asked.endpoint:
            raise bad_request(f"The requests of file {record.id} are for '{record.endpoint}', not the batch's "
                              f"endpoint '{asked.endpoint}'.", param="endpoint", code="mismatched_endpoint")
        now = int(time.time())
        batch = Batch(new_id(), key.id, asked.endpoint, record.id, asked.completion_window, now,
                      now + asked.window_s, record.lines, metadata=asked.metadata,
                      output_expires_after=asked.output_expires_after, key_name=key.name)
        await self.store.jobs.create(batch.record(), COORDINATORS)
        self._wake_coordinators.set()
        return batch

    async def find(self, owner: str, batch_id: str) -> Batch | None:
        if not is_batch_id(batch_id):
            return None
        record = await self.store.jobs.get(batch_id)
        if record is None or record.key != listed_under(owner):
            return None     # another key's batch does not exist for this one
        return Batch.of(record)

    async def shown(self, batch: Batch) -> dict[str, Any]:
        """The Batch object, with the live tally while it runs."""
        live = None if batch.finished else await self.store.batches.tally(batch.id)
        return batch.shown(live)

    async def page(self, owner: str, after: str | None, limit: int) -> tuple[list[Batch], bool]:
        records, more = await self.store.jobs.page(listed_under(owner), after, limit, "desc")
        return [Batch.of(r) for r in records], more

    async def cancel(self, batch: Batch) -> None:
        """Ask the batch to stop: its coordinator ends it as `cancelled` once its parts stop
        (the requests in flight are answered and kept)."""
        if not batch.finished:
            await self.store.batches.stop(batch.id, "cancel", int(time.time()))
            self._stops.pop(batch.id, None)

    # -- taking work from a queue -----------------------------------------------------------

    async def _take(self, queue: str, slots: Callable[[], int], run: Callable[[Claim], Coroutine[Any, Any, None]],
                    wake: asyncio.Event) -> None:
        running: set[asyncio.Task] = set()
        freed = asyncio.Event()

        def finished(task: asyncio.Task) -> None:
            running.discard(task)
            freed.set()
            if not task.cancelled() and task.exception() is not None:
                log.error("batch work on %s failed unexpectedly", queue, exc_info=task.exception())
        try:
            while True:
                if len(running) >= slots():
                    freed.clear()
                    await freed.wait()
                    continue
                try:
                    claim = await self.store.jobs.claim(queue, self.consumer, self.lease_s())
                except StoreDown as e:
                    log.warning("batch queue '%s' unreachable: %s", queue, e)
                    claim = None
                if claim is None:
                    wake.clear()
                    await set_or_after(wake, _LOOK_S)
                    continue
                task = asyncio.create_task(self._held(claim, run))
                running.add(task)
                task.add_done_callback(finished)
        finally:
            # Shutting down: work stops where it is and stays claimed; the leases lapse and
            # another process takes it over.
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _held(self, claim: Claim, run: Callable[[Claim], Coroutine[Any, Any, None]]) -> None:
        """`run(claim)` with its lease renewed every third of it; stopped if the lease is lost."""
        work = asyncio.create_task(run(claim))
        try:
            await renewing(self.store.jobs, claim, self.lease_s(), work, f"batch work {claim.job_id}")
        finally:
            if not work.done():
                work.cancel()
            with suppress(asyncio.CancelledError, _Lost, native.Again):
                await work

    # -- a batch's coordinator --------------------------------------------------------------

    async def _coordinate(self, claim: Claim) -> None:
        record = await self.store.jobs.get(claim.job_id)
        if record is None:
            await self.store.jobs.done(claim)
            return
        batch = Batch.of(record)
        if batch.status == "validating":
            if not await self._begin(batch, claim):
                return
        while batch.status == "in_progress":
            tally = await self.store.batches.tally(batch.id)
            if tally.done >= batch.total:
                await self._finish(batch, claim, "completed", tally)
            elif tally.stop is None and time.time() >= batch.expires_at:
                await self.store.batches.stop(batch.id, "expire", int(time.time()))
            elif tally.stop is not None and await self._parts_done(batch):
                await self._finish(batch, claim, "cancelled" if tally.stop == "cancel" else "expired",
                                   await self.store.batches.tally(batch.id))
            else:
                await asyncio.sleep(_WATCH_S)
        if batch.status == "finalizing":     # taken over from a process that died writing the files
            tally = await self.store.batches.tally(batch.id)
            end = {"cancel": "cancelled", "expire": "expired"}.get(tally.stop or "", "completed")
            await self._finish(batch, claim, end, tally)
        await self.store.jobs.done(claim)

    async def _save(self, batch: Batch, claim: Claim, deliveries: list | None = None) -> None:
        if not await self.store.jobs.update(batch.record(), claim.token, deliveries):
            raise _Lost(batch.id)

    async def _begin(self, batch: Batch, claim: Claim) -> bool:
        """Cut the input file into parts and queue them; False when the batch failed instead."""
        record = await self.files.find(batch.owner, batch.input_file_id)
        if record is None:
            await self._fail(batch, claim, "invalid_file", f"the input file {batch.input_file_id} is gone")
            return False
        size = self.config().part_lines      # read once: an edit meanwhile does not cut parts two ways
        try:
            offsets, model, one_model = await self._cut(record, size)
        except (OSError, ValueError) as e:
            await self._fail(batch, claim, "invalid_file", f"the input file could not be read: {e}")
            return False
        if len(offsets) * size < batch.total:
            await self._fail(batch, claim, "invalid_file", "the input file changed since it was checked")
            return False
        batch.parts, batch.model = offsets, model
        batch.native = self._native(batch, one_model)
        for n, offset in enumerate(offsets):
            part = Part(batch.id, n, n * size, min(size, batch.total - n * size), offset)
            # A coordinator taken over may have queued some already: each is made once.
            if await self.store.jobs.get(part.record(batch.expires_at).id) is None:
                await self.store.jobs.create(part.record(batch.expires_at), PARTS)
        batch.status, batch.in_progress_at = "in_progress", int(time.time())
        await self._save(batch, claim)
        self._wake_parts.set()
        return True

    def _native(self, batch: Batch, one_model: bool) -> dict[str, str] | None:
        """Where its parts go when they go to a provider's batch API (native.py): chat requests that
        all name one model whose first target's provider has `batch: native`."""
        rt = self.runtime()
        key = rt.keys.by_id(batch.owner)
        if not one_model or batch.model is None or batch.endpoint not in native.ENDPOINTS or key is None:
            return None
        target = native.target_for(rt, key, batch.model)
        if target is None:
            return None
        served, _ = rt.resolve(key, batch.model, "chat")
        return {"provider": target.provider.name, "asked": batch.model, "model": served.name}

    async def _cut(self, record: FileRecord, size: int) -> tuple[list[int], str | None, bool]:
        """Where each part of `size` requests starts in the file, the first request's model, and
        whether every request names that model."""
        offsets: list[int] = []
        model, one_model = None, True
        at = requests = 0
        async with aclosing(self.files.lines(record)) as lines:
            async for line in lines:
                start, at = at, at + len(line) + 1
                if not line.strip() or line == _BOM:
                    continue
                if requests % size == 0:
                    offsets.append(start)
                named = _model_of(line)
                if requests == 0:
                    model = named
                elif one_model and named != model:
                    one_model = False
                requests += 1
        return offsets, model, one_model

    async def _fail(self, batch: Batch, claim: Claim, code: str, message: str) -> None:
        batch.status, batch.failed_at = "failed", int(time.time())
        batch.errors = [{"code": code, "message": message, "param": "input_file_id", "line": None}]
        await self._save(batch, claim, self._events(batch))
        BATCHES.inc(("failed",))
        await self.store.jobs.done(claim)

    async def _parts_done(self, batch: Batch) -> bool:
        records, _ = await self.store.jobs.page("batch-parts:" + batch.id, None, len(batch.parts) + 1, "asc")
        return all(r.status == "completed" for r in records)

    async def _finish(self, batch: Batch, claim: Claim, end: str, tally: Tally) -> None:
        """Write the output and error files, then end the batch as `end` with its event."""
        if batch.status != "finalizing":
            batch.status, batch.finalizing_at = "finalizing", int(time.time())
            await self._save(batch, claim)
        answered_ok = tally.done - tally.failed
        if answered_ok and batch.output_file_id is None:
            made = await self.files.create(batch.owner, "batch_output", f"{batch.id}_output.jsonl",
                                           self._results(batch, ok=True), batch.output_expires_after)
            batch.output_file_id = made.id
            await self._save(batch, claim)
        if batch.total - answered_ok and batch.error_file_id is None:
            made = await self.files.create(batch.owner, "batch_output", f"{batch.id}_error.jsonl",
                                           self._results(batch, ok=False, why=end, gaps=tally.done < batch.total),
                                           batch.output_expires_after)
            batch.error_file_id = made.id
            await self._save(batch, claim)
        now = int(time.time())
        batch.status = end
        setattr(batch, f"{end}_at", now)
        if end == "cancelled" and batch.cancelling_at is None:
            batch.cancelling_at = tally.stop_at
        batch.final = {"done": tally.done, "failed": tally.failed, "cost_nano": tally.cost_nano,
                       "input_tokens": tally.input_tokens, "output_tokens": tally.output_tokens,
                       "stop": tally.stop, "stop_at": tally.stop_at}
        await self._save(batch, claim, self._events(batch))
        BATCHES.inc((end,))
        self.sender.wake.set()
        with suppress(StoreDown):    # the tally is not needed now; one left over expires with nothing
            await self.store.batches.drop(batch.id)

    def _events(self, batch: Batch) -> list:
        return deliveries_for(self.runtime().config.webhooks, f"batch.{batch.status}", batch.id, None)

    async def _results(self, batch: Batch, ok: bool, why: str = "", gaps: bool = False) -> AsyncGenerator[bytes, None]:
        """The output file's lines (ok) or the error file's (failed, and those never answered), in
        input order, read from the store a thousand at a time. `gaps`: some were never answered
        (their custom_ids are read from the input file)."""
        unanswered = _UNANSWERED.get(why)
        custom_ids = self._custom_ids(batch) if gaps and not ok else None
        try:
            for first in range(0, batch.total, _READ_AHEAD):
                count = min(_READ_AHEAD, batch.total - first)
                stored = await self.store.batches.stored(batch.id, first, count)
                out = []
                for result in stored:
                    custom_id = await anext(custom_ids, None) if custom_ids is not None else None
                    if result is None:
                        if not ok:
                            code, message = unanswered or ("batch_failed", "the request was not run")
                            out.append(protocol.unanswered(custom_id, code, message))
                    elif result[0] == ok:
                        out.append(result[1])
                if out:
                    yield b"\n".join(out) + b"\n"
        finally:
            if custom_ids is not None:
                await custom_ids.aclose()

    async def _custom_ids(self, batch: Batch) -> AsyncGenerator[str | None, None]:
        """Each request's custom_id in order (None for all when the input file is gone)."""
        record = await self.files.find(batch.owner, batch.input_file_id)
        if record is not None:
            try:
                async with aclosing(self.files.lines(record)) as lines:
                    async for line in lines:
                        if line.strip() and line != _BOM:
                            yield _custom_id_of(line)
                return
            except (OSError, ValueError) as e:
                log.warning("batch %s: its input file could not be read again (%s)", batch.id, e)
        while True:
            yield None

    # -- a part of a batch ------------------------------------------------------------------

    async def _run_part(self, claim: Claim) -> None:
        store = self.store
        record = await store.jobs.get(claim.job_id)
        if record is None:
            await store.jobs.done(claim)
            return
        part = Part.of(record)
        batch_record = await store.jobs.get(part.batch_id)
        batch = Batch.of(batch_record) if batch_record is not None else None
        if batch is not None and not batch.finished and await self.stop_asked(batch.id) is None:
            if batch.native is not None:
                await native.run_part(self, batch, part, claim, record)
            else:
                await self.run_lines(batch, part)
        record.status = "completed"
        await store.jobs.update(record, claim.token)
        await store.jobs.done(claim)

    async def run_lines(self, batch: Batch, part: Part) -> None:
        stored = await self.store.batches.stored(batch.id, part.first, part.count)
        if all(s is not None for s in stored):
            return
        file = await self.files.find(batch.owner, batch.input_file_id)
        if file is None:
            await self.input_gone(batch, part, stored)
            return
        cfg = self.config()
        batch_slots = self._batch_slots.setdefault(batch.id, asyncio.Semaphore(cfg.concurrency))
        key_slots = self._key_slots.setdefault(batch.owner, asyncio.Semaphore(cfg.key_concurrency))
        self._slot_users[batch.id] += 1
        self._slot_users[batch.owner] += 1
        running: set[asyncio.Task] = set()
        try:
            async with aclosing(self.part_lines(file, part)) as lines:
                async for index, line in lines:
                    if stored[index - part.first] is not None:
                        continue
                    await batch_slots.acquire()
                    await key_slots.acquire()
                    if await self.stop_asked(batch.id) is not None:
                        batch_slots.release()
                        key_slots.release()
                        break
                    task = asyncio.create_task(run_line(self, batch, index, line))
                    running.add(task)
                    task.add_done_callback(functools.partial(_release, running, batch_slots, key_slots))
            await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for name, slots in ((batch.id, self._batch_slots), (batch.owner, self._key_slots)):
                self._slot_users[name] -= 1
                if self._slot_users[name] <= 0:
                    del self._slot_users[name]
                    slots.pop(name, None)

    async def input_gone(self, batch: Batch, part: Part, stored: list[Any]) -> None:
        """The input file was deleted (or expired) while the batch ran: the part's requests not run
        yet fail, so the batch still ends, with what ran kept."""
        log.warning("batch %s: its input file is gone; part %d's requests are not run", batch.id, part.n)
        for at, result in enumerate(stored):
            if result is None:
                await self.keep(batch, part.first + at, False, protocol.unanswered(
                    None, "input_file_gone", f"the batch's input file {batch.input_file_id} was deleted before "
                                             "this request was run"))

    async def part_lines(self, file: FileRecord, part: Part) -> AsyncGenerator[tuple[int, bytes], None]:
        """The part's requests, (index in the batch, line), read from where the part starts."""
        index = part.first
        async with aclosing(self.files.lines(file, first=part.offset)) as lines:
            async for line in lines:
                if index >= part.first + part.count:
                    return
                if not line.strip() or line == _BOM:
                    continue
                yield index, line.removeprefix(_BOM) if index == 0 else line
                index += 1

    async def stop_asked(self, batch_id: str) -> str | None:
        """Whether the batch was asked to stop, looked at no more than once a second per batch."""
        seen = self._stops.get(batch_id)
        now = time.monotonic()
        if seen is None or now - seen[0] > _STOP_SEEN_S:
            stop = (await self.store.batches.tally(batch_id)).stop
            self._stops[batch_id] = seen = (now, stop)
            if len(self._stops) > 4 * _MOST_COORDINATED:
                self._stops.pop(next(iter(self._stops)))
        return seen[1]

    async def keep(self, batch: Batch, index: int, ok: bool, line: bytes, cost_nano: int = 0,
                   input_tokens: int = 0, output_tokens: int = 0) -> bool:
        """Store a line's answer unless one is stored already; whether this stored it."""
        for attempt in range(5):
            try:
                stored = await self.store.batches.put(batch.id, index, ok, line, cost_nano, input_tokens,
                                                      output_tokens)
                if stored:
                    BATCH_REQUESTS.inc(("ok" if ok else "failed", "gateway" if batch.native is None else "native"))
                return stored
            except StoreDown as e:
                log.warning("batch %s: line %d's answer not kept yet (%s)", batch.id, index, e)
                await asyncio.sleep(0.2 * 2 ** attempt)
        # Not kept: the part's run stops here, unfinished; its lease lapses and the line runs again.
        raise _Lost(batch.id)


_UNANSWERED = {
    "cancelled": ("batch_cancelled", "the batch was cancelled before this request was run"),
    "expired": ("batch_expired", "the batch expired before this request was run"),
}


def _release(running: set[asyncio.Task], batch_slots: asyncio.Semaphore, key_slots: asyncio.Semaphore,
             task: asyncio.Task) -> None:
    running.discard(task)
    batch_slots.release()
    key_slots.release()


def _model_of(line: bytes) -> str | None:
    with suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        model = orjson.loads(line.removeprefix(_BOM))["body"]["model"]
        return model if isinstance(model, str) else None
    return None


def _custom_id_of(line: bytes) -> str | None:
    with suppress(orjson.JSONDecodeError, AttributeError, TypeError, KeyError):
        value = orjson.loads(line.removeprefix(_BOM))["custom_id"]
        return value if isinstance(value, str) else None
    return None
