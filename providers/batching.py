"""Native batches: a provider's own batch API (OpenAI's Batch API, Anthropic's Message
Batches, Gemini's batch mode) as a capability of its adapter.

The gateway hands a part of a batch (at most ~1000 chat requests) to `NativeBatches.submit`,
each request already in the provider's own format (`provider.request(call).body`), keeps the
JSON-able state it returns (across restarts), polls `ended`, and reads `results`: one
`BatchResult` per request, each body what the provider's normal endpoint would have answered,
so `provider.answer` and `provider.error` read it as they read any answer. The clients
(providers/{openai,anthropic,gemini}/batches.py) send everything through the provider's own
`roundtrip`: its headers, its redirect policy, its answer size cap, its error kinds.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import orjson
from pydantic import BaseModel, Field

from providers.errors import BadRequest, ProviderError
from providers.http import HttpProvider, UpstreamRequest, json_object

NotRun = Literal["cancelled", "expired"]
# What a custom id may be: what Anthropic takes (^[a-zA-Z0-9_-]{1,64}$), and safe in every format.
CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BatchOptions(BaseModel):
    """The batch options of a provider with a batch API (a mixin of its `Options`)."""
    # native: the chat requests of batches whose model this provider serves first go to its own batch API.
    batch: Literal["gateway", "native"] = "gateway"
    # The share of the normal price a native batch request costs (the three bill batches at half price).
    batch_price: float = Field(0.5, ge=0, le=1)
    batch_poll_s: float = Field(30, gt=0)     # how often a native batch is looked at


@dataclass(slots=True)
class BatchResult:
    """One request's outcome in a provider batch."""
    custom_id: str
    # The HTTP status the request would have had: 200 for a success; the provider's error
    # status (or 500) for a failure; 0 when it was never run.
    status: int
    # Success: the body the provider's normal (non-batch) endpoint answers for this request (what
    # `provider.answer(call, body)` reads). Failure: the provider's error body (what
    # `provider.error(status, body, {})` reads). Never run: b"".
    body: bytes
    not_run: NotRun | None = None    # "cancelled" | "expired" when status is 0


class NativeBatches(ABC):
    """A provider's batch API, for chat requests."""

    @abstractmethod
    async def submit(self, model: str, requests: list[tuple[str, bytes]]) -> dict[str, Any]:
        """One provider batch of `requests`: (custom_id, the body the provider's normal chat endpoint
        would get for it: `provider.request(call).body`). `model` is the upstream model name.
        Returns a JSON-able state that finds the batch again (its `id`: the provider's batch id)."""

    @abstractmethod
    async def ended(self, state: dict[str, Any]) -> bool:
        """Whether the provider batch has ended (completed, failed, expired, cancelled: nothing more
        will change)."""

    @abstractmethod
    async def results(self, state: dict[str, Any]) -> list[BatchResult]:
        """Once ended: one result per submitted custom_id, in the order submitted."""

    @abstractmethod
    async def cancel(self, state: dict[str, Any]) -> None:
        """Ask the provider to stop the batch (nothing, if it has ended already)."""


class HttpBatches(NativeBatches):
    """What the three clients share: the provider they call through, and reading what it answers."""

    def __init__(self, provider: HttpProvider[Any], headers: dict[str, str]) -> None:
        """`headers`: the provider's own, as its adapter sends them (a GET goes without content-type)."""
        self.provider = provider
        self.name = provider.name
        self.base = provider.options.base_url.rstrip("/")
        self.headers = headers
        self.get_headers = without_content_type(headers)

    def malformed(self, what: str) -> ProviderError:
        return self.provider.upstream.malformed(what)

    async def fetch_json(self, req: UpstreamRequest) -> dict[str, Any]:
        """`req` sent, its answer one JSON object (else the provider's malformed error)."""
        return json_object(await self.provider.roundtrip(req), self.name)

    def string(self, doc: dict[str, Any], key: str, what: str) -> str:
        """`doc[key]`, a non-empty string, or the provider's malformed error."""
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise self.malformed(f"answered {what} without a string '{key}'")
        return value

    def state_id(self, state: dict[str, Any], key: str = "id") -> str:
        """The provider's batch id kept in `state` (a state that lost it is the gateway's fault)."""
        value = state.get(key) if isinstance(state, dict) else None
        if not isinstance(value, str) or not value:
            raise ProviderError(f"provider '{self.name}': the native batch's '{key}' is missing from its state",
                                provider=self.name, code="batch_state_missing")
        return value

    def state_ids(self, state: dict[str, Any]) -> list[str]:
        ids = state.get("ids") if isinstance(state, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProviderError(f"provider '{self.name}': the native batch's custom ids are missing from its state",
                                provider=self.name, code="batch_state_missing")
        return ids

    def not_ended(self, batch_id: str, status: str) -> ProviderError:
        """`results` asked for before the batch ended (the caller's mistake: nothing to read yet)."""
        return ProviderError(f"provider '{self.name}': batch '{batch_id}' has not ended ({status})",
                             provider=self.name, code="batch_not_ended")

    async def cancel_unless_ended(self, state: dict[str, Any], req: UpstreamRequest) -> None:
        """Send the cancel request `req`; a refusal because the batch has ended meanwhile is no failure."""
        try:
            await self.provider.roundtrip(req)
        except ProviderError:
            if not await self.ended(state):
                raise


def checked(provider: str, requests: Sequence[tuple[str, bytes]]) -> list[str]:
    """The custom ids of `requests`, once each is well-formed and unique (else a BadRequest: the
    caller's fault, never sent)."""
    if not requests:
        raise BadRequest(f"provider '{provider}': a native batch needs at least one request", provider=provider,
                         code="batch_empty")
    ids = [custom_id for custom_id, _ in requests]
    for custom_id in ids:
        if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
            raise BadRequest(f"provider '{provider}': custom id {custom_id!r} is not 1 to 64 letters, digits, "
                             "'_' or '-'", provider=provider, code="invalid_custom_id")
    if len(set(ids)) != len(ids):
        raise BadRequest(f"provider '{provider}': a native batch's custom ids must be unique", provider=provider,
                         code="invalid_custom_id")
    return ids


def one_line(body: bytes) -> bytes:
    """A JSON body as one line, its bytes otherwise untouched: in JSON a line break can only be
    whitespace between tokens (never inside a string), so it becomes a space."""
    if b"\n" in body or b"\r" in body:
        return body.replace(b"\r", b" ").replace(b"\n", b" ")
    return body


def jsonl(body: bytes, malformed: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines body (blank lines skipped); `malformed(what)` makes the error
    raised for a line that is not one."""
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise malformed(f"answered batch results whose line {number} is not JSON") from None
        if not isinstance(doc, dict):
            raise malformed(f"answered batch results whose line {number} is not a JSON object")
        yield doc


def in_order(ids: Sequence[str], found: dict[str, BatchResult], missing: NotRun) -> list[BatchResult]:
    """One result per id, in order: those the provider reported nothing for not run (`missing`)."""
    return [found.get(i) or BatchResult(i, 0, b"", missing) for i in ids]


def member(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """`doc[key]` where it is a JSON object, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def segment(value: str) -> str:
    """`value` as one path segment (an id the provider handed back, never trusted to be URL-safe)."""
    return quote(value, safe="")


def without_content_type(headers: dict[str, str]) -> dict[str, str]:
    """A provider's headers for a request without a body (GET)."""
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}


__all__ = ["BatchOptions", "BatchResult", "HttpBatches", "NativeBatches", "NotRun", "checked", "in_order",
           "jsonl", "member", "one_line", "segment", "without_content_type"]
