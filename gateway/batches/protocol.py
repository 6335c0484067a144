"""The /v1/batches wire format: a create request read and checked, a list's
query, and the lines of a batch's output and error files, as OpenAI's Batch
API and its SDK shape them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import ApiError, bad_request
from gateway.files.batch_input import ENDPOINTS
from gateway.protocol import json_object

WINDOWS = {"24h": 86_400}                          # completion_window: only 24h, as OpenAI takes it
MIN_OUTPUT_EXPIRY_S, MAX_OUTPUT_EXPIRY_S = 3600, 2_592_000
MAX_METADATA = 16                                  # OpenAI's Metadata: 16 pairs,
MAX_METADATA_KEY, MAX_METADATA_VALUE = 64, 512     # keys of 64 characters, values of 512
MAX_LIST = 100                                     # `limit`: 1-100, default 20


@dataclass(frozen=True, slots=True)
class CreateBatch:
    input_file_id: str
    endpoint: str
    window_s: int
    completion_window: str
    metadata: dict[str, str] | None
    output_expires_after: int | None


MAX_BODY = 64 * 1024                               # a create request's body, at most (metadata is bounded)


def parse_create(body: bytes) -> CreateBatch:
    doc = json_object(body)
    file_id = doc.get("input_file_id")
    if not isinstance(file_id, str) or not file_id:
        raise bad_request("'input_file_id' is required: the id of a file uploaded with purpose 'batch'.",
                          param="input_file_id")
    endpoint = doc.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise bad_request(f"'endpoint' must be one of {', '.join(ENDPOINTS)}.", param="endpoint")
    window = doc.get("completion_window")
    if window not in WINDOWS:
        raise bad_request("'completion_window' must be '24h'.", param="completion_window")
    return CreateBatch(file_id, endpoint, WINDOWS[window], window, _metadata(doc.get("metadata")),
                       _output_expiry(doc.get("output_expires_after")))


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("'metadata' must be an object of strings.", param="metadata")
    if len(value) > MAX_METADATA:
        raise bad_request(f"'metadata' holds at most {MAX_METADATA} pairs.", param="metadata")
    for k, v in value.items():
        if len(k) > MAX_METADATA_KEY or not isinstance(v, str) or len(v) > MAX_METADATA_VALUE:
            raise bad_request(f"'metadata' keys are at most {MAX_METADATA_KEY} characters and its values strings "
                              f"of at most {MAX_METADATA_VALUE}.", param="metadata")
    return value


def _output_expiry(value: Any) -> int | None:
    if value is None:
        return None
    seconds = value.get("seconds") if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("anchor") != "created_at":
        raise bad_request("'output_expires_after.anchor' must be 'created_at'.", param="output_expires_after.anchor")
    if type(seconds) is not int or not MIN_OUTPUT_EXPIRY_S <= seconds <= MAX_OUTPUT_EXPIRY_S:
        raise bad_request(f"'output_expires_after.seconds' must be an integer from {MIN_OUTPUT_EXPIRY_S} (an hour) "
                          f"to {MAX_OUTPUT_EXPIRY_S} (30 days).", param="output_expires_after.seconds")
    return seconds


@dataclass(frozen=True, slots=True)
class ListQuery:
    after: str | None
    limit: int


def list_query(q: dict[str, str]) -> ListQuery:
    """GET /v1/batches's query: `after`, `limit` (1-100, default 20); newest first, as OpenAI lists."""
    text = q.get("limit", "20")
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_LIST):
        raise bad_request(f"'limit' must be an integer from 1 to {MAX_LIST}.", param="limit")
    return ListQuery(q.get("after") or None, int(text))


# -- output and error files -------------------------------------------------------------

def _line_id() -> bytes:
    return b"batch_req_" + os.urandom(12).hex().encode()


def answered(custom_id: str | None, status: int, request_id: bytes, body: bytes,
             error: dict[str, Any] | None = None) -> bytes:
    """One output (or error) file line for a request that was answered: `body` is the answer's
    JSON as it came, put in place without being parsed again."""
    return (b'{"id":"' + _line_id() + b'","custom_id":' + orjson.dumps(custom_id)
            + b',"response":{"status_code":' + str(status).encode() + b',"request_id":' + orjson.dumps(
                request_id.decode("ascii", "replace")) + b',"body":' + body + b'},"error":'
            + orjson.dumps(error) + b"}")


def unanswered(custom_id: str | None, code: str, message: str) -> bytes:
    """One error file line for a request that was never answered (the batch expired or was
    cancelled first, or the line could not be read)."""
    return orjson.dumps({"id": _line_id().decode(), "custom_id": custom_id, "response": None,
                         "error": {"code": code, "message": message}})


def list_page(batches: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    return {"object": "list", "data": batches, "first_id": batches[0]["id"] if batches else None,
            "last_id": batches[-1]["id"] if batches else None, "has_more": more}


def not_found(batch_id: str) -> ApiError:
    return ApiError(404, f"No batch found with id '{batch_id[:100]}'.", param="batch_id", code="not_found")
