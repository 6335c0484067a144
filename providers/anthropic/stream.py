"""Anthropic's stream events as OpenAI `chat.completion.chunk`s (pure).

Events: message_start (id, model, input usage), content_block_start (a text
or tool_use block at an index), content_block_delta (text_delta,
input_json_delta), content_block_stop, message_delta (stop_reason, cumulative
usage), message_stop, ping, error.

The role chunk waits for the first content block: an `error` event that comes
before any content (overloaded right after message_start) then reaches the
router before the client has a byte, so the call still fails over.
"""
from __future__ import annotations

from typing import Any

import orjson

from providers.anthropic.answer import finish_reason, usage
from providers.anthropic.errors import failure
from providers.base import Usage
from providers.chat_format import ChunkWriter, wants_usage_chunk
from providers.errors import UpstreamFault


class Translator:
    def __init__(self, data: dict[str, Any], model: str, *, provider: str, secret: str = "") -> None:
        self.usage = Usage()
        self._provider = provider
        self._secret = secret
        self._wants_usage = wants_usage_chunk(data)
        self._writer = ChunkWriter("", model)
        self._counts: dict[str, Any] = {}      # Anthropic's usage fields, latest value of each
        self._tools: dict[int | None, int] = {}   # content block index (None: not sent) -> OpenAI tool_calls index
        self._silent: set[int | None] = set()      # tool blocks whose input has not streamed yet
        self._started = False                  # the role chunk went out
        self._finish: str | None = None
        self._stopped = False                  # message_stop arrived

    def feed(self, event: str | None, data: bytes) -> list[dict]:
        if event == "ping":
            return []
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamFault(f"provider '{self._provider}' sent a stream event that is not JSON",
                                provider=self._provider) from None
        if not isinstance(doc, dict):
            raise UpstreamFault(f"provider '{self._provider}' sent a stream event that is not an object",
                                provider=self._provider)
        kind = doc.get("type") or event
        if kind == "content_block_delta":
            return self._delta(doc)
        if kind == "content_block_start":
            return self._block_start(doc)
        if kind == "content_block_stop":
            return self._block_stop(doc)
        if kind == "message_start":
            msg = doc.get("message") or {}
            self._writer.id = msg.get("id") or self._writer.id
            self._writer.model = msg.get("model") or self._writer.model
            self._count(msg.get("usage"))
        elif kind == "message_delta":
            self._finish = finish_reason((doc.get("delta") or {}).get("stop_reason"))
            self._count(doc.get("usage"))
        elif kind == "message_stop":
            self._stopped = True
            return [*self._role(), self._writer.delta({}, self._finish or "stop")]
        elif kind == "error":
            err = doc.get("error") or {}
            raise failure(err.get("type"), str(err.get("message") or ""), provider=self._provider,
                          secret=self._secret)
        # content_block_stop, and event types this adapter does not know yet: nothing to send
        return []

    def end(self) -> list[dict]:
        if not self._stopped:
            # Anthropic always ends with message_stop; without it the answer was cut off.
            raise UpstreamFault(f"provider '{self._provider}' ended the stream before message_stop",
                                provider=self._provider)
        return [self._writer.usage(self.usage)] if self._wants_usage else []

    def _role(self) -> list[dict]:
        if self._started:
            return []
        self._started = True
        return [self._writer.delta({"role": "assistant", "content": ""})]

    def _block_start(self, doc: dict[str, Any]) -> list[dict]:
        block = doc.get("content_block") or {}
        out = self._role()
        if block.get("type") == "tool_use":
            index = self._tools[doc.get("index")] = len(self._tools)
            given = block.get("input")     # normally {} with the input streamed after; a whole one counts as sent
            arguments = orjson.dumps(given).decode() if isinstance(given, dict) and given else ""
            if not arguments:
                self._silent.add(doc.get("index"))
            out.append(self._writer.delta({"tool_calls": [{
                "index": index, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": arguments}}]}))
        elif block.get("type") == "text" and block.get("text"):
            out.append(self._writer.delta({"content": block["text"]}))
        return out

    def _delta(self, doc: dict[str, Any]) -> list[dict]:
        delta = doc.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [*self._role(), self._writer.delta({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tools.get(doc.get("index"))
            if index is None:
                raise UpstreamFault(f"provider '{self._provider}' streamed tool input for a block it never started",
                                    provider=self._provider)
            self._silent.discard(doc.get("index"))
            return [self._writer.delta({"tool_calls": [{"index": index,
                                                        "function": {"arguments": delta["partial_json"]}}]})]
        return []     # thinking, signature and citation deltas have no OpenAI counterpart

    def _block_stop(self, doc: dict[str, Any]) -> list[dict]:
        """A tool call whose input never streamed is `{}`, as in the whole answer (never "", which is not JSON)."""
        if doc.get("index") not in self._silent:
            return []
        self._silent.discard(doc.get("index"))
        return [self._writer.delta({"tool_calls": [{"index": self._tools[doc.get("index")],
                                                    "function": {"arguments": "{}"}}]})]

    def _count(self, u: Any) -> None:
        if isinstance(u, dict):
            self._counts.update((k, v) for k, v in u.items() if v is not None)
            self.usage = usage(self._counts)
