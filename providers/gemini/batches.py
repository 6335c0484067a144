"""Gemini's batch mode (Generative Language API), with inline requests.

- submit: `POST /models/{model}:batchGenerateContent` `{"batch": {"displayName", "inputConfig":
  {"requests": {"requests": [{"request": {...GenerateContentRequest...}, "metadata": {"key": custom_id}}]}}}}`
  (each body's bytes as they are) -> a long-running operation named `batches/{id}`, the batch in its
  `metadata` (`@type` ...GenerateContentBatch).
- ended: `GET /batches/{id}` (the same operation), its `metadata.state` BATCH_STATE_SUCCEEDED,
  _FAILED, _CANCELLED or _EXPIRED (else _PENDING, _RUNNING), or `done`.
- results: the ended operation's `metadata.output.inlinedResponses.inlinedResponses` (or its
  `response`'s, where the finished operation puts the GenerateContentBatchOutput): one
  `{"response": GenerateContentResponse | "error": google.rpc.Status, "metadata": {"key"}}` a request,
  matched by its key, or by position where the keys are not given back.
- cancel: `POST /batches/{id}:cancel`.
Headers: the adapter's own (x-goog-api-key: the key never goes in a URL).
"""
from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

import orjson

from providers.batching import BatchResult, HttpBatches, checked, in_order, member, one_line
from providers.errors import ProviderError
from providers.gemini import api
from providers.http import UpstreamRequest

if TYPE_CHECKING:
    from providers.gemini import GeminiProvider

ENDED = frozenset({"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED",
                   "BATCH_STATE_EXPIRED"})
_NAME = re.compile(r"batches/[A-Za-z0-9_-]+")
# google.rpc.Code: (the HTTP status a call failing so answers, the code's name), as google.rpc.Code
# maps them (CANCELLED, which has no plain HTTP status, is a 500 like any code not listed).
RPC = {2: (500, "UNKNOWN"), 3: (400, "INVALID_ARGUMENT"), 4: (504, "DEADLINE_EXCEEDED"),
       5: (404, "NOT_FOUND"), 6: (409, "ALREADY_EXISTS"), 7: (403, "PERMISSION_DENIED"),
       8: (429, "RESOURCE_EXHAUSTED"), 9: (400, "FAILED_PRECONDITION"), 10: (409, "ABORTED"),
       11: (400, "OUT_OF_RANGE"), 12: (501, "UNIMPLEMENTED"), 13: (500, "INTERNAL"), 14: (503, "UNAVAILABLE"),
       15: (500, "DATA_LOSS"), 16: (401, "UNAUTHENTICATED")}


class GeminiBatches(HttpBatches):
    provider: GeminiProvider

    def __init__(self, provider: GeminiProvider) -> None:
        super().__init__(provider, provider._headers)

    async def submit(self, model: str, requests: list[tuple[str, bytes]]) -> dict[str, Any]:
        ids = checked(self.name, requests)
        items = b",".join(b'{"request":' + one_line(body) + b',"metadata":{"key":' + orjson.dumps(custom_id) + b"}}"
                          for custom_id, body in requests)
        head = orjson.dumps({"displayName": f"gateway-{secrets.token_hex(6)}"})[:-1]
        body = (b'{"batch":' + head + b',"inputConfig":{"requests":{"requests":[' + items + b"]}}}}")
        op = await self.fetch_json(UpstreamRequest(api.url(self.provider.options, model, "batchGenerateContent"),
                                                   body, self.headers))
        return {"id": self._name(op), "ids": ids}

    def _name(self, op: dict[str, Any]) -> str:
        """The batch's resource name (`batches/...`), checked: it goes into URLs as it is."""
        name = op.get("name") or member(op, "metadata").get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.malformed("answered batchGenerateContent without a batch name 'batches/...'")
        return name

    def _state_name(self, state: dict[str, Any]) -> str:
        name = self.state_id(state)
        if not _NAME.fullmatch(name):
            raise ProviderError(f"provider '{self.name}': the native batch's name in its state is not "
                                "'batches/...'", provider=self.name, code="batch_state_missing")
        return name

    async def _batch(self, state: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """(the operation, the batch's state)."""
        name = self._state_name(state)
        op = await self.fetch_json(UpstreamRequest(f"{self.base}/{name}", b"", self.get_headers, method="GET"))
        state_ = member(op, "metadata").get("state", op.get("state"))
        if state_ is not None and not isinstance(state_, str):
            raise self.malformed("answered a batch whose 'state' is not a string")
        if state_ is None and not isinstance(op.get("done"), bool):
            raise self.malformed("answered a batch without its 'state'")
        if state_ is not None and state_.startswith("JOB_STATE_"):     # the SDKs' spelling of the same states
            state_ = "BATCH_STATE_" + state_.removeprefix("JOB_STATE_")
        return op, state_

    async def ended(self, state: dict[str, Any]) -> bool:
        op, batch_state = await self._batch(state)
        return batch_state in ENDED or op.get("done") is True

    async def results(self, state: dict[str, Any]) -> list[BatchResult]:
        ids = self.state_ids(state)
        op, batch_state = await self._batch(state)
        if not (batch_state in ENDED or op.get("done") is True):
            raise self.not_ended(state["id"], batch_state or "not done")
        items = self._responses(op) or []
        keyed = [_key(item) for item in items]
        if items and all(k is None for k in keyed) and len(items) == len(ids):
            keyed = list(ids)       # keys not given back: the responses are in the requests' order
        wanted = set(ids)
        found: dict[str, BatchResult] = {}
        for key, item in zip(keyed, items, strict=True):
            if key is not None and key in wanted and key not in found:
                found[key] = self._item(key, item)
        if batch_state == "BATCH_STATE_CANCELLED":
            return in_order(ids, found, "cancelled")
        if batch_state == "BATCH_STATE_EXPIRED":
            return in_order(ids, found, "expired")
        if batch_state == "BATCH_STATE_FAILED" or not items:
            failure = self._failure(op, batch_state)
            return [found.get(i) or BatchResult(i, 500, failure) for i in ids]
        return in_order(ids, found, "expired")

    def _responses(self, op: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The inlined responses, wherever the operation holds them (None: it holds none)."""
        for holder in (member(op, "metadata").get("output"), op.get("response"), op.get("output")):
            if not isinstance(holder, dict) or "inlinedResponses" not in holder:
                continue
            outer = holder["inlinedResponses"]
            inner = outer.get("inlinedResponses", []) if isinstance(outer, dict) else None
            if not isinstance(inner, list) or not all(isinstance(i, dict) for i in inner):
                raise self.malformed("answered a batch whose 'inlinedResponses' is not a list of objects")
            return inner
        return None

    def _item(self, key: str, item: dict[str, Any]) -> BatchResult:
        response, error = item.get("response"), item.get("error")
        if isinstance(response, dict):
            return BatchResult(key, 200, orjson.dumps(response))
        if isinstance(error, dict):
            return BatchResult(key, *error_answer(error))
        raise self.malformed("answered a batch response with neither a 'response' nor an 'error'")

    def _failure(self, op: dict[str, Any], batch_state: str | None) -> bytes:
        """The error body of a request a batch ended without answering (failed): a 500, a failure of the
        batch rather than of the request."""
        error = member(op, "error")
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        return orjson.dumps({"error": {"code": 500, "status": "INTERNAL", "message": (
            f"provider '{self.name}' ended batch '{op.get('name')}' ({batch_state or 'done'}) without answering "
            "this request" + (f": {message}" if message else ""))}})

    async def cancel(self, state: dict[str, Any]) -> None:
        name = self._state_name(state)
        await self.cancel_unless_ended(state, UpstreamRequest(f"{self.base}/{name}:cancel", b"", self.headers))


def _key(item: dict[str, Any]) -> str | None:
    meta = item.get("metadata")
    key = meta.get("key") if isinstance(meta, dict) else None
    return key if isinstance(key, str) else None


def error_answer(error: dict[str, Any]) -> tuple[int, bytes]:
    """A request's google.rpc.Status as (HTTP status, the error body Gemini answers with it)."""
    code = error.get("code")
    status, name = RPC.get(code, (500, "UNKNOWN")) if isinstance(code, int) else (500, "UNKNOWN")
    message = error.get("message")
    doc: dict[str, Any] = {"code": status, "message": message if isinstance(message, str) else "", "status": name}
    details = error.get("details")
    if isinstance(details, list) and details:
        doc["details"] = details
    return status, orjson.dumps({"error": doc})
