"""OpenAI's Batch API, for chat requests (and any server that speaks it: `openai_compatible`).

- submit: the requests as JSON Lines, `{"custom_id", "method": "POST", "url": "/v1/chat/completions",
  "body": {...}}` a line (each body's bytes as they are), uploaded as a multipart `POST /files` with
  `purpose=batch`; then `POST /batches` `{"input_file_id", "endpoint": "/v1/chat/completions",
  "completion_window": "24h"}`.
- ended: `GET /batches/{id}`, its `status` completed, failed, expired or cancelled.
- results: `GET /files/{output_file_id}/content` and `GET /files/{error_file_id}/content`, a line
  `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}` a request; one
  with no response and the error code `batch_expired` / `batch_cancelled` was never run.
- cancel: `POST /batches/{id}/cancel`.

A batch that failed (its input refused at validation) ran nothing and has no output: every request
comes back failed, a request its errors name by line with 400 and that error, the others with 500
and an error that names the batch's errors (a failure of the batch, not of the request, so the
gateway may run it again elsewhere).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from providers.batching import (
    BatchResult,
    HttpBatches,
    checked,
    in_order,
    jsonl,
    member,
    one_line,
    segment,
)
from providers.http import UpstreamRequest
from providers.openai.video import multipart

if TYPE_CHECKING:
    from providers.openai import OpenAIProvider

ENDPOINT = "/v1/chat/completions"
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
_NOT_RUN = {"batch_expired": "expired", "batch_cancelled": "cancelled"}
_MAX_ERRORS_NAMED = 5


class OpenAIBatches(HttpBatches):
    provider: OpenAIProvider

    def __init__(self, provider: OpenAIProvider) -> None:
        super().__init__(provider, provider._headers)

    async def submit(self, model: str, requests: list[tuple[str, bytes]]) -> dict[str, Any]:
        ids = checked(self.name, requests)
        lines = b"".join(b'{"custom_id":' + orjson.dumps(custom_id) + b',"method":"POST","url":"' + ENDPOINT.encode()
                         + b'","body":' + one_line(body) + b"}\n" for custom_id, body in requests)
        form, content_type = multipart([("purpose", "batch"), ("file", ("batch.jsonl", "application/jsonl", lines))])
        uploaded = await self.fetch_json(UpstreamRequest(f"{self.base}/files", form,
                                                         {**self.get_headers, "content-type": content_type}))
        file_id = self.string(uploaded, "id", "a file upload")
        create = orjson.dumps({"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h"})
        batch = await self.fetch_json(UpstreamRequest(f"{self.base}/batches", create,
                                                      self.headers))
        return {"id": self.string(batch, "id", "a batch"), "input_file_id": file_id, "ids": ids}

    async def _batch(self, state: dict[str, Any]) -> dict[str, Any]:
        batch_id = self.state_id(state)
        batch = await self.fetch_json(UpstreamRequest(f"{self.base}/batches/{segment(batch_id)}", b"",
                                                      self.get_headers, method="GET"))
        self.string(batch, "status", "a batch")
        return batch

    async def ended(self, state: dict[str, Any]) -> bool:
        return (await self._batch(state))["status"] in ENDED

    async def results(self, state: dict[str, Any]) -> list[BatchResult]:
        ids = self.state_ids(state)
        batch = await self._batch(state)
        status = batch["status"]
        if status not in ENDED:
            raise self.not_ended(state["id"], status)
        if status == "failed":
            return self._failed(ids, batch)
        wanted = set(ids)
        found: dict[str, BatchResult] = {}
        for key in ("output_file_id", "error_file_id"):
            file_id = batch.get(key)
            if file_id is None:
                continue
            if not isinstance(file_id, str) or not file_id:
                raise self.malformed(f"answered a batch whose '{key}' is not a string")
            content = await self.provider.roundtrip(UpstreamRequest(
                f"{self.base}/files/{segment(file_id)}/content", b"", self.get_headers, method="GET"))
            for line in jsonl(content, self.malformed):
                result = self._line(line)
                if result.custom_id in wanted:
                    found.setdefault(result.custom_id, result)
        return in_order(ids, found, "cancelled" if status == "cancelled" else "expired")

    def _line(self, line: dict[str, Any]) -> BatchResult:
        """One output or error file line as a result."""
        custom_id = self.string(line, "custom_id", "a batch result line")
        response = line.get("response")
        if isinstance(response, dict):
            status, body = response.get("status_code"), response.get("body")
            if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
                raise self.malformed("answered a batch result line without a 'status_code'")
            if isinstance(body, str):
                return BatchResult(custom_id, status, body.encode())
            if not isinstance(body, dict):
                raise self.malformed("answered a batch result line whose response has no JSON 'body'")
            return BatchResult(custom_id, status, orjson.dumps(body))
        error = line.get("error")
        if response is not None or not isinstance(error, dict):
            raise self.malformed("answered a batch result line with neither a response nor an error")
        code = error.get("code")
        if code in _NOT_RUN:
            return BatchResult(custom_id, 0, b"", "cancelled" if code == "batch_cancelled" else "expired")
        message = error.get("message")
        return BatchResult(custom_id, 500, _error_body(
            message if isinstance(message, str) and message else "the request failed in the provider's batch",
            code if isinstance(code, str) else "batch_request_failed"))

    def _failed(self, ids: list[str], batch: dict[str, Any]) -> list[BatchResult]:
        """A failed batch's requests: each named by a line of its errors failed with that error (400),
        the others with the batch's failure (500)."""
        data = member(batch, "errors").get("data")
        errors = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
        named: dict[str, BatchResult] = {}
        said: list[str] = []
        for e in errors:
            message = e.get("message") if isinstance(e.get("message"), str) else ""
            code = e.get("code") if isinstance(e.get("code"), str) else None
            line = e.get("line")
            custom_id = ids[line - 1] if isinstance(line, int) and 1 <= line <= len(ids) else None
            said.append(f"line {line} ({custom_id}): {message or code}" if custom_id else message or code or "")
            if custom_id is not None and custom_id not in named:
                param = e.get("param") if isinstance(e.get("param"), str) else None
                named[custom_id] = BatchResult(custom_id, 400, _error_body(
                    message or "the provider refused this request in its batch", code or "invalid_batch_line",
                    type_="invalid_request_error", param=param))
        reasons = "; ".join(s for s in said[:_MAX_ERRORS_NAMED] if s) or "no reason given"
        if len(said) > _MAX_ERRORS_NAMED:
            reasons += f"; and {len(said) - _MAX_ERRORS_NAMED} more"
        whole = _error_body(f"provider '{self.name}' failed batch '{batch.get('id')}' before running it: {reasons}",
                            "batch_failed")
        return [named.get(i) or BatchResult(i, 500, whole) for i in ids]

    async def cancel(self, state: dict[str, Any]) -> None:
        batch_id = self.state_id(state)
        await self.cancel_unless_ended(state, UpstreamRequest(f"{self.base}/batches/{segment(batch_id)}/cancel",
                                                              b"", self.headers))


def _error_body(message: str, code: str, *, type_: str = "server_error", param: str | None = None) -> bytes:
    """An error body in OpenAI's shape (what `parse_error` reads)."""
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})
