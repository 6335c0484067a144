"""Native batches: a batch's parts handed to the provider's own batch API
(OpenAI's Batch API, Anthropic's Message Batches, Gemini's batch mode) where
the model's first target is a provider configured with `batch: native`.

A part's requests are translated as the provider's adapter translates any
request (`provider.request`), submitted as one provider batch, polled, and
their results translated back as the adapter translates any answer
(`provider.answer`, `provider.error`), so the output file is the same as a
batch the gateway runs itself. The provider's batch is noted in the part's
record as soon as it is submitted: a process that takes the part over polls
that batch and never submits it again.

Cost is the target's price times the provider's `batch_price` (the three bill
batches at half price), in the ledger as one row per part with the key, the
model and the provider, and counted against the key's budget. Requests go to
the provider's batch quota, not through the key's rate limits.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import orjson

from gateway.auth import Key
from gateway.batches import protocol
from gateway.batches.batch import Batch, Part
from gateway.batches.lines import whole
from gateway.errors import ApiError, from_provider
from gateway.limits import budget_key
from gateway.routes import Target
from gateway.runtime import Runtime
from gateway.spend import NANO, cost_nano, today
from gateway.store import Claim, FileRecord, Hold, JobRecord, LedgerEntry, Settlement
from providers.base import Call, Usage
from providers.batching import NativeBatches
from providers.errors import ProviderError, RateLimited, UpstreamFault, UpstreamTimeout
from providers.http import HttpProvider

if TYPE_CHECKING:
    from gateway.batches.service import Batches

log = logging.getLogger("gateway.batches")

ENDPOINTS = frozenset({"/v1/chat/completions"})     # what providers' batch APIs take here
_STOP_LOOK_S = 1.0
_SUBMIT_TRIES, _SUBMIT_WAIT_S = 4, 1.0


def target_for(rt: Runtime, key: Key, model: str) -> Target | None:
    """The target a native batch of `model`'s requests goes to: the model's first, when its
    provider has a native batch API configured; else None (the gateway runs the batch itself)."""
    try:
        served, strategy = rt.resolve(key, model, "chat")
    except ApiError:
        return None
    plan = served.plan(strategy)
    if not plan:
        return None
    first = plan[0]
    provider = first.provider
    return first if isinstance(provider, HttpProvider) and provider.native_batches() is not None else None


async def run_part(batches: Batches, batch: Batch, part: Part, claim: Claim, record: JobRecord) -> None:
    """Run a part of a native batch: submit it (once), wait for the provider, keep its answers."""
    assert batch.native is not None
    rt = batches.runtime()
    key = rt.keys.by_id(batch.owner)
    target = target_for(rt, key, batch.native["asked"]) if key is not None else None
    if key is None or target is None or target.provider.name != batch.native["provider"]:
        # The key was revoked, or the config changed meanwhile: the gateway runs the part itself.
        await batches.run_lines(batch, part)
        return
    provider = target.provider
    assert isinstance(provider, HttpProvider)      # target_for chose it for its native_batches
    client = provider.native_batches()
    assert client is not None
    stored = await batches.store.batches.stored(batch.id, part.first, part.count)
    file = await batches.files.find(batch.owner, batch.input_file_id)
    state = part.native_state
    if file is None and state is None:
        await batches.input_gone(batch, part, stored)
        return
    if state is None:
        assert file is not None
        requests: list[tuple[str, bytes]] = []
        custom_ids: dict[int, str | None] = {}
        async with aclosing(batches.part_lines(file, part)) as lines:
            async for index, line in lines:
                if stored[index - part.first] is not None:
                    continue
                custom_id, call = _call(line, target.model)
                try:
                    requests.append((f"r{index}", provider.request(call).body))
                    custom_ids[index] = custom_id
                except (ProviderError, ApiError) as e:
                    refused = from_provider(e) if isinstance(e, ProviderError) else e
                    await batches.keep(batch, index, False, protocol.answered(
                        custom_id, refused.status, b"", refused.body()))
        if not requests:
            return
        if await _budget_spent(batches, key):       # as the key's requests are refused once it is spent
            await _fail_all(batches, batch, custom_ids, ApiError(
                429, f"You exceeded your current quota: key '{key.name}' has used its budget.",
                type="insufficient_quota", code="insufficient_quota"))
            return
        try:
            state = await _submit(client, target.model, requests)
        except ProviderError as e:      # refused for good (a bad request, a bad key): each request fails with it
            await _fail_all(batches, batch, custom_ids, from_provider(e))
            return
        part.native_state = state
        record.data = orjson.dumps({**orjson.loads(record.data), "native_state": state})
        if not await batches.store.jobs.update(record, claim.token):
            await client.cancel(state)      # another process holds the part now
            return
    await _wait(batches, batch, client, state, getattr(provider.options, "batch_poll_s", 30.0))
    await _keep_results(batches, batch, part, file, target, key, await client.results(state), state)


async def _fail_all(batches: Batches, batch: Batch, custom_ids: dict[int, str | None], refused: ApiError) -> None:
    """Each of the part's requests answered with the same refusal."""
    for index, custom_id in custom_ids.items():
        await batches.keep(batch, index, False, protocol.answered(custom_id, refused.status, b"", refused.body()))


async def _submit(client: NativeBatches, model: str, requests: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The provider's batch, made; a refusal that may pass (the upstream down, busy, slow) is asked
    again a few times, then left to the part's next run (raised as _Again: its lease lapses)."""
    for attempt in range(_SUBMIT_TRIES):
        try:
            return dict(await client.submit(model, requests))
        except (UpstreamFault, UpstreamTimeout, RateLimited) as e:
            log.warning("a native batch could not be submitted yet (%s)", e)
            if attempt == _SUBMIT_TRIES - 1:
                raise Again(str(e)) from None
            await asyncio.sleep(_SUBMIT_WAIT_S * 2 ** attempt)
    raise AssertionError("unreachable")


class Again(Exception):
    """Not done now; the part's lease lapses and it is taken up again."""


async def _wait(batches: Batches, batch: Batch, client: NativeBatches, state: dict[str, Any], poll_s: float) -> None:
    """Until the provider's batch ends; cancelled there once the gateway's batch is asked to stop."""
    cancelled = False
    while not await _ended(batch, client, state):
        waited = 0.0
        while waited < poll_s:
            await asyncio.sleep(min(_STOP_LOOK_S, poll_s - waited))
            waited += _STOP_LOOK_S
            if not cancelled and await batches.stop_asked(batch.id) is not None:
                await client.cancel(state)
                cancelled = True
                break


async def _ended(batch: Batch, client: NativeBatches, state: dict[str, Any]) -> bool:
    """Whether the provider's batch ended; a failed look is not an answer (it is looked at again)."""
    try:
        return bool(await client.ended(state))
    except ProviderError as e:
        log.warning("batch %s: the provider's batch %s could not be looked at (%s)", batch.id, state.get("id"), e)
        return False


async def _keep_results(batches: Batches, batch: Batch, part: Part, file: FileRecord | None, target: Target,
                        key: Key, results: list[Any], state: dict[str, Any]) -> None:
    provider = target.provider
    assert isinstance(provider, HttpProvider)
    share = getattr(provider.options, "batch_price", 1.0)
    asked: dict[int, tuple[str | None, Call]] = {}
    if file is not None:        # else deleted since it was submitted: the answers are kept without custom_ids
        async with aclosing(batches.part_lines(file, part)) as lines:
            async for index, line in lines:
                asked[index] = _call(line, target.model)
    request_id = str(state.get("id", "")).encode()
    total, kept = Usage(), 0
    spent = 0
    for result in results:
        index = _index(result.custom_id)
        if not part.first <= index < part.first + part.count or result.status == 0:
            continue        # not run (the provider's batch was cancelled or expired): left unanswered
        custom_id, call = asked.get(index) or _call(b"{}", target.model)
        ok, cost, usage = False, 0, None
        try:
            if 200 <= result.status < 300:
                reply = provider.answer(call, result.body)
                usage, body, status = reply.usage, reply.body, 200
                cost = round(cost_nano(target.price, usage) * share)
                ok = True
            else:
                raise provider.error(result.status, result.body, {})
        except ProviderError as e:
            refused = from_provider(e)
            body, status = refused.body(), refused.status
        line = protocol.answered(custom_id, status, request_id, body)
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (0, 0)
        if await batches.keep(batch, index, ok, line, cost, *tokens) and ok and usage is not None:
            kept += 1
            spent += cost
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens
            total.cached_tokens += usage.cached_tokens
    if kept:
        await _settle(batches, batch, key, target, kept, total, spent)


async def _settle(batches: Batches, batch: Batch, key: Key, target: Target, requests: int, usage: Usage,
                  spent: int) -> None:
    """The part's answers in the ledger (one row) and against the key's budget."""
    hold = Hold(budget_key(key.id, key.budget), round(key.budget.usd * NANO), 0) if key.budget else None
    entry = LedgerEntry(today(), key.id, batch.native["model"] if batch.native else "",
                        target.provider.name, requests, usage.prompt_tokens, usage.completion_tokens,
                        usage.cached_tokens, spent)
    await batches.store.limits.settle(Settlement(hold=hold, spent_nano=spent, entry=entry))


async def _budget_spent(batches: Batches, key: Key) -> bool:
    if key.budget is None:
        return False
    spent = await batches.store.limits.budget_spent(budget_key(key.id, key.budget))
    return spent >= round(key.budget.usd * NANO)


def _call(line: bytes, model: str) -> tuple[str | None, Call]:
    """The line's custom_id, and its body as a call to the target (whole: a batch's answers are)."""
    try:
        item = orjson.loads(line)
        custom_id, data = item.get("custom_id"), item.get("body")
    except (orjson.JSONDecodeError, AttributeError):
        custom_id, data = None, None
    data = whole(data) if isinstance(data, dict) else {}
    body = orjson.dumps(data)
    return custom_id if isinstance(custom_id, str) else None, Call("chat", body, data, model)


def _index(custom_id: str) -> int:
    return int(custom_id[1:]) if custom_id[:1] == "r" and custom_id[1:].isdigit() else -1
