"""ConverseStream events as OpenAI chunks (pure), one event at a time.

The events arrive as (`:event-type`, JSON payload) from the event-stream
frames; exception frames arrive under their `:exception-type` and end the
stream as the matching failure.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers import chat_format as cf
from providers.base import Usage
from providers.bedrock import errors, reply
from providers.errors import ProviderError, UpstreamFault


class ConverseStream:
    """A StreamTranslator for one ConverseStream answer."""

    def __init__(self, model: str, include_usage: bool, provider: str, secrets: tuple[str, ...] = ()) -> None:
        self.usage = Usage()
        self._out = cf.ChunkWriter(reply.completion_id(), model)
        self._include_usage = include_usage
        self._provider = provider
        self._secrets = secrets
        self._started = False
        self._finished = False
        self._tools: dict[int, int] = {}     # contentBlockIndex -> OpenAI tool_calls index
        self._silent: set[int] = set()       # tool blocks whose input has not streamed yet

    def feed(self, event: str | None, data: bytes) -> list[dict]:
        if event and event.endswith("Exception"):
            raise errors.stream_exception(event, data, provider=self._provider, secrets=self._secrets)
        handler = _HANDLERS.get(event or "")
        if handler is None:
            return []                         # events this version does not use
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._fault(f"an unreadable {event} event") from None
        if not isinstance(doc, dict):
            raise self._fault(f"an unreadable {event} event")
        return handler(self, doc)

    def end(self) -> list[dict]:
        out = self._start()
        if not self._finished:
            out.append(self._out.delta({}, "stop"))
        if self._include_usage:
            out.append(self._out.usage(self.usage))
        return out

    # -- events ---------------------------------------------------------------

    def _message_start(self, doc: dict[str, Any]) -> list[dict]:
        return self._start()

    def _block_start(self, doc: dict[str, Any]) -> list[dict]:
        use = (doc.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return []
        index = self._tools[doc.get("contentBlockIndex", -1)] = len(self._tools)
        self._silent.add(doc.get("contentBlockIndex", -1))
        call = {"index": index, **cf.tool_call(use.get("toolUseId", ""), use.get("name", ""), "")}
        return self._start() + [self._out.delta({"tool_calls": [call]})]

    def _block_delta(self, doc: dict[str, Any]) -> list[dict]:
        delta = doc.get("delta") or {}
        if isinstance(delta.get("text"), str):
            return self._start() + [self._out.delta({"content": delta["text"]})]
        use = delta.get("toolUse")
        index = self._tools.get(doc.get("contentBlockIndex", -1))
        if isinstance(use, dict) and index is not None and use.get("input"):
            self._silent.discard(doc.get("contentBlockIndex", -1))
            call = {"index": index, "function": {"arguments": use["input"]}}
            return self._start() + [self._out.delta({"tool_calls": [call]})]
        return []                             # reasoning, citations: not in OpenAI's chunks

    def _block_stop(self, doc: dict[str, Any]) -> list[dict]:
        """A tool call whose input never streamed is `{}`, as in the whole answer (never "", which is not JSON)."""
        block = doc.get("contentBlockIndex", -1)
        if block not in self._silent:
            return []
        self._silent.discard(block)
        return [self._out.delta({"tool_calls": [{"index": self._tools[block], "function": {"arguments": "{}"}}]})]

    def _message_stop(self, doc: dict[str, Any]) -> list[dict]:
        self._finished = True
        return self._start() + [self._out.delta({}, reply.finish_reason(doc.get("stopReason")))]

    def _metadata(self, doc: dict[str, Any]) -> list[dict]:
        self.usage = reply.usage_of(doc.get("usage"))
        return []

    # -- helpers --------------------------------------------------------------

    def _start(self) -> list[dict]:
        """The role chunk, once, before anything else (as OpenAI streams)."""
        if self._started:
            return []
        self._started = True
        return [self._out.delta({"role": "assistant", "content": ""})]

    def _fault(self, what: str) -> ProviderError:
        return UpstreamFault(f"provider '{self._provider}' sent {what}", provider=self._provider)


_HANDLERS = {
    "messageStart": ConverseStream._message_start,
    "contentBlockStart": ConverseStream._block_start,
    "contentBlockDelta": ConverseStream._block_delta,
    "contentBlockStop": ConverseStream._block_stop,
    "messageStop": ConverseStream._message_stop,
    "metadata": ConverseStream._metadata,
}
