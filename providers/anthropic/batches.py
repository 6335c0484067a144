"""Anthropic's Message Batches API, for the Messages requests the adapter makes.

- submit: `POST /messages/batches` `{"requests": [{"custom_id", "params": {...Messages body...}}]}`
  (each body's bytes as they are) -> a `message_batch`, its `id` `msgbatch_...`.
- ended: `GET /messages/batches/{id}`, its `processing_status` "ended" (else in_progress, canceling).
- results: the JSON Lines at the ended batch's `results_url`, fetched only where that URL is on the
  API's own origin (scheme, host and port of `base_url`): the key goes with it, so another host is
  refused before anything is sent. A line `{"custom_id", "result": {"type": "succeeded", "message"}}`
  (the message as `/messages` answers it), `errored` (`"error"`: the error body `/messages` would have
  answered, its status from its type), `canceled` or `expired` (never run).
- cancel: `POST /messages/batches/{id}/cancel`.
Headers: the adapter's own (x-api-key, anthropic-version, anthropic-beta, `headers`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import yarl

from providers.batching import (
    BatchResult,
    HttpBatches,
    checked,
    in_order,
    jsonl,
    one_line,
    segment,
)
from providers.errors import UpstreamFault
from providers.http import UpstreamRequest, origin

if TYPE_CHECKING:
    from providers.anthropic import AnthropicProvider

# Anthropic's error types and the statuses it answers them with (docs: "Errors", HTTP errors).
STATUS_OF = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
             "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
             "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529}
_NOT_RUN = {"canceled": "cancelled", "expired": "expired"}


class AnthropicBatches(HttpBatches):
    provider: AnthropicProvider

    def __init__(self, provider: AnthropicProvider) -> None:
        super().__init__(provider, provider._headers)

    async def submit(self, model: str, requests: list[tuple[str, bytes]]) -> dict[str, Any]:
        ids = checked(self.name, requests)
        items = b",".join(b'{"custom_id":' + orjson.dumps(custom_id) + b',"params":' + one_line(body) + b"}"
                          for custom_id, body in requests)
        batch = await self.fetch_json(UpstreamRequest(f"{self.base}/messages/batches",
                                                      b'{"requests":[' + items + b"]}", self.headers))
        return {"id": self.string(batch, "id", "a message batch"), "ids": ids}

    async def _batch(self, state: dict[str, Any]) -> dict[str, Any]:
        batch_id = self.state_id(state)
        batch = await self.fetch_json(UpstreamRequest(f"{self.base}/messages/batches/{segment(batch_id)}", b"",
                                                      self.get_headers, method="GET"))
        self.string(batch, "processing_status", "a message batch")
        return batch

    async def ended(self, state: dict[str, Any]) -> bool:
        return (await self._batch(state))["processing_status"] == "ended"

    async def results(self, state: dict[str, Any]) -> list[BatchResult]:
        ids = self.state_ids(state)
        batch = await self._batch(state)
        if batch["processing_status"] != "ended":
            raise self.not_ended(state["id"], batch["processing_status"])
        url = self._results_url(self.string(batch, "results_url", "an ended message batch"))
        content = await self.provider.roundtrip(UpstreamRequest(url, b"", self.get_headers, method="GET"))
        wanted = set(ids)
        found: dict[str, BatchResult] = {}
        for line in jsonl(content, self.malformed):
            result = self._line(line)
            if result.custom_id in wanted:
                found.setdefault(result.custom_id, result)
        return in_order(ids, found, "expired")

    def _results_url(self, given: str) -> str:
        """The results URL, resolved against the API's; another origin than the API's is refused."""
        try:
            url = yarl.URL(self.base + "/", encoded=True).join(yarl.URL(given, encoded=True))
        except ValueError:
            raise self.malformed("answered a results_url that is not a URL") from None
        if url.scheme not in ("http", "https") or not url.host or origin(url) != origin(self.base):
            # The Location-like value is the upstream's choice: not relayed.
            raise UpstreamFault(f"provider '{self.name}' answered a results_url on another origin than its "
                                "base_url; the credentials go only to the provider's own origin",
                                provider=self.name, code="upstream_foreign_url")
        return str(url)

    def _line(self, line: dict[str, Any]) -> BatchResult:
        custom_id = self.string(line, "custom_id", "a batch result line")
        result = line.get("result")
        kind = result.get("type") if isinstance(result, dict) else None
        if not isinstance(result, dict) or not isinstance(kind, str):
            raise self.malformed("answered a batch result line without a result 'type'")
        if kind == "succeeded":
            message = result.get("message")
            if not isinstance(message, dict):
                raise self.malformed("answered a succeeded batch result without its 'message'")
            return BatchResult(custom_id, 200, orjson.dumps(message))
        if kind in _NOT_RUN:
            return BatchResult(custom_id, 0, b"", "cancelled" if kind == "canceled" else "expired")
        error = result.get("error") if kind == "errored" else None
        inner = error.get("error") if isinstance(error, dict) else None
        if isinstance(error, dict) and isinstance(inner, dict):
            type_ = inner.get("type")
            return BatchResult(custom_id, STATUS_OF.get(type_, 500) if isinstance(type_, str) else 500,
                               orjson.dumps(error))
        return BatchResult(custom_id, 500, orjson.dumps({"type": "error", "error": {
            "type": "api_error", "message": f"the request's batch result was '{kind}' with no error body"}}))

    async def cancel(self, state: dict[str, Any]) -> None:
        batch_id = self.state_id(state)
        await self.cancel_unless_ended(state, UpstreamRequest(
            f"{self.base}/messages/batches/{segment(batch_id)}/cancel", b"", self.get_headers))
