"""Gemini's `streamGenerateContent?alt=sse` as OpenAI chunks (pure).

Each SSE event holds a whole `GenerateContentResponse` with the next piece of
each candidate: text deltas pass on as content deltas, function calls arrive
whole and pass on as complete tool-call deltas, and a candidate's
`finishReason` closes its choice. Every event repeats the running
`usageMetadata`; the last one counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.base import Call, Usage
from providers.chat_format import ChunkWriter, wants_usage_chunk
from providers.errors import ProviderError, UpstreamFault
from providers.gemini import answer
from providers.gemini.errors import from_error


@dataclass(slots=True)
class _Choice:
    calls: int = 0           # tool calls sent so far: the next one's index
    finished: bool = False


class GeminiStream:
    def __init__(self, call: Call, *, provider: str, secret: str = "") -> None:
        self.usage = Usage()
        self._thoughts = 0
        self._model = call.model
        self._provider = provider
        self._secret = secret
        self._wants_usage = wants_usage_chunk(call.data)
        self._single_call = call.data.get("parallel_tool_calls") is False
        self._writer: ChunkWriter | None = None
        self._choices: dict[int, _Choice] = {}

    def feed(self, event: str | None, data: bytes) -> list[dict[str, Any]]:
        try:
            doc = answer.parse(data)
            if isinstance(doc.get("error"), dict):     # Gemini failed after the stream began
                raise from_error(doc["error"], 500, {}, provider=self._provider, secret=self._secret)
        except ProviderError as e:
            e.provider = e.provider or self._provider
            raise
        w = self._writer
        if w is None:
            w = self._writer = ChunkWriter(doc.get("responseId") or answer.new_id(),
                                           doc.get("modelVersion") or self._model)
        out: list[dict[str, Any]] = []
        for i, candidate in enumerate(doc.get("candidates") or []):
            if isinstance(candidate, dict):
                out += self._candidate(w, candidate.get("index", i), candidate)
        if isinstance(doc.get("usageMetadata"), dict):
            self.usage, self._thoughts = answer.read_usage(doc["usageMetadata"])
        return out

    def _candidate(self, w: ChunkWriter, index: int, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        choice = self._choices.get(index)
        if choice is None:
            choice = self._choices[index] = _Choice()
            out.append(w.delta({"role": "assistant", "content": ""}, index=index))
        if choice.finished:
            return out
        text, calls = answer.read_parts(candidate, self._single_call)
        if self._single_call and choice.calls:
            calls = []
        if text:
            out.append(w.delta({"content": text}, index=index))
        if calls:
            deltas = [{"index": choice.calls + k, **c} for k, c in enumerate(calls)]
            choice.calls += len(calls)
            out.append(w.delta({"tool_calls": deltas}, index=index))
        reason = candidate.get("finishReason")
        if reason:
            choice.finished = True
            out.append(w.delta({}, answer.finish_reason(reason, choice.calls > 0), index=index))
        return out

    def end(self) -> list[dict[str, Any]]:
        w = self._writer
        if w is None or not self._choices:
            raise UpstreamFault(f"provider '{self._provider}' ended its stream without an answer",
                                provider=self._provider)
        out = [w.delta({}, answer.finish_reason(None, c.calls > 0), index=i)
               for i, c in self._choices.items() if not c.finished]
        if self._wants_usage:
            chunk = w.usage(self.usage)
            chunk["usage"] = answer.usage_json(self.usage, self._thoughts)
            out.append(chunk)
        return out
