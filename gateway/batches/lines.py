"""One request of a batch, run by the gateway itself: made as the batch's key through the
app's own dispatch (inside.py), waited out while the key's limits refuse it for rate, a video
request followed until its video is finished, and its answer kept as an output file line."""
from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import orjson

from gateway.batches import protocol
from gateway.batches.batch import Batch
from gateway.batches.inside import Answer, call
from gateway.exchange import COST_USD

if TYPE_CHECKING:
    from gateway.batches.service import Batches

_MOST_WAIT_S = 60.0        # the longest wait on a key's rate limit before looking again


def whole(body: dict[str, Any]) -> dict[str, Any]:
    """A request's body as a batch sends it: `stream: true` runs as false (a batch's answers are whole)."""
    return {**body, "stream": False} if body.get("stream") else body


async def run(batches: Batches, batch: Batch, index: int, line: bytes) -> None:
    """Run one request and keep its answer (the first kept wins)."""
    try:
        item = orjson.loads(line)
        custom_id, body = item["custom_id"], item["body"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        await batches.keep(batch, index, False, protocol.unanswered(None, "invalid_request", "the line is not "
                                                                     "a batch request"))
        return
    sent = orjson.dumps(whole(body))
    request_id = f"{batch.id}-{index}"
    while True:
        rt = batches.runtime()
        secret = rt.keys.inside(batch.owner, rt.config.batches.key_share)
        if secret is None:
            await batches.keep(batch, index, False, protocol.unanswered(
                custom_id, "invalid_api_key", "the batch's key is no longer configured"))
            return
        answer = await call(batches.http, secret, "POST", batch.endpoint, sent, request_id)
        if not _wait_for_room(answer):
            break
        # The key is at its rate limit: wait for room, as its other requests do; stop if asked.
        await asyncio.sleep(min(_MOST_WAIT_S, max(0.2, answer.retry_after_s)))
        if await batches.stop_asked(batch.id) is not None:
            return
    if batch.endpoint == "/v1/videos" and answer.status == 200:
        made = await _video_done(batches, batch, secret, answer)
        if made is None:
            return      # asked to stop while it was made: the line stays unanswered
        answer = made
    await _keep_answer(batches, batch, index, custom_id, answer)


async def _video_done(batches: Batches, batch: Batch, secret: bytes, accepted: Answer) -> Answer | None:
    """A video request's answer once its video is finished: the Video object then."""
    video_id = orjson.loads(accepted.body).get("id", "")
    answer = accepted
    while True:
        status = orjson.loads(answer.body).get("status") if answer.status == 200 else None
        if status in ("completed", "failed") or answer.status == 404:
            break
        await asyncio.sleep(batches.config().poll_s)
        if await batches.stop_asked(batch.id) is not None:
            return None
        answer = await call(batches.http, secret, "GET", f"/v1/videos/{video_id}")
    answer.headers[b"x-request-id"] = accepted.request_id
    answer.headers[COST_USD] = accepted.headers.get(COST_USD, b"0")
    if status == "failed":
        answer.headers[COST_USD] = b"0"     # a failed video is refunded
    return answer


async def _keep_answer(batches: Batches, batch: Batch, index: int, custom_id: str, answer: Answer) -> None:
    ok = 200 <= answer.status < 300
    error = None
    tokens = (0, 0)
    try:
        doc = orjson.loads(answer.body) if answer.body else None
    except orjson.JSONDecodeError:
        doc = None
    if doc is None:     # never from the gateway's JSON endpoints; kept as a string all the same
        answer.body = orjson.dumps(answer.body.decode("utf-8", "replace"))
    elif isinstance(doc, dict):
        tokens = _tokens(doc.get("usage"))
        if doc.get("object") == "video" and doc.get("status") == "failed":
            ok, error = False, doc.get("error") or {"code": "video_failed", "message": "the video failed"}
    line = protocol.answered(custom_id, answer.status, answer.request_id, answer.body, error)
    await batches.keep(batch, index, ok, line, answer.cost_nano if ok else 0, *tokens)


def _wait_for_room(answer: Answer) -> bool:
    """A refusal the key's own limits made for rate (waited out), not for its budget."""
    if answer.status != 429:
        return False
    with suppress(orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return orjson.loads(answer.body)["error"].get("code") == "rate_limit_exceeded"
    return False


def _tokens(usage: Any) -> tuple[int, int]:
    if not isinstance(usage, dict):
        return 0, 0
    inp = usage.get("input_tokens", usage.get("prompt_tokens", 0))
    out = usage.get("output_tokens", usage.get("completion_tokens", 0))
    return (inp if type(inp) is int else 0), (out if type(out) is int else 0)
