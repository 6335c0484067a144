"""A chat completions stream as an Anthropic Messages event stream.

Anthropic streams content blocks one at a time, each opened (`content_block_start`), filled
(`content_block_delta`) and closed (`content_block_stop`) with an increasing `index`, between `message_start`
(and a `ping`) and `message_delta` (stop reason, usage) + `message_stop`. Chat sends reasoning, text and tool
call fragments as deltas, and may interleave several tool calls by their `index`. Blocks cannot interleave, so
one tool call streams live while the fragments of any other are buffered; the live call closes when its
arguments are a whole JSON object and another call is waiting (or when other content or the end comes), and
the next call opens with what it buffered so far as one `input_json_delta`, then streams live in turn. So the
assembled input of every block is exactly the upstream's arguments, and calls keep their chat order.
Arguments that are not JSON stream as they came (there is no taking them back); the final `message` gives them
as `input: {}`, as `message_from_chat` does.
"""
from __future__ import annotations

from typing import Any

import orjson

from gateway.messages.translate import message_usage, stop_reason, tool_input, tool_use_block
from providers import sse


class _Call:
    """One tool call, keyed by its chat `index`; `block` is its content block index once opened."""
    __slots__ = ("index", "call_id", "name", "arguments", "block")

    def __init__(self, index: int, call_id: Any, name: Any) -> None:
        self.index = index
        self.call_id = call_id
        self.name = name if isinstance(name, str) else ""
        self.arguments = ""
        self.block: int | None = None


class StreamTranslator:
    """Feed it the chat stream's SSE bytes; it answers the Anthropic SSE bytes to send on."""

    def __init__(self, *, message_id: str, model: str, input_tokens_estimate: int = 0) -> None:
        self._message_id = message_id
        self._model = model
        self._input_tokens_estimate = input_tokens_estimate
        self._blocks: list[dict] = []        # content blocks in order; a tool block's input is set at the end
        self._block_calls: dict[int, _Call] = {}     # tool calls by their block index
        self._open: int | None = None        # index of the open block
        self._calls: dict[int, _Call] = {}   # tool calls by chat index
        self._waiting: list[_Call] = []      # calls not yet opened, in chat order
        self._finish_reason: Any = None
        self._matched_stop: str | None = None
        self._refused = False
        self._final: dict | None = None
        self.usage: dict | None = None       # the upstream's chat usage, as it came

    # --- the public steps ---

    def start(self) -> bytes:
        return self._event("message_start", message=self._snapshot()) + self._event("ping")

    def feed(self, chunk_bytes: bytes) -> bytes:
        """Anthropic events for chat SSE bytes holding whole events; `[DONE]` and comments give nothing.
        A data line that is not JSON raises ValueError (orjson's): the caller ends the stream with `fail`."""
        return b"".join([self._chunk(chunk) for chunk in sse.chat_chunks(chunk_bytes)])

    def finish(self) -> bytes:
        out = self._close()
        while self._waiting:
            out += self._open_call(self._waiting.pop(0)) + self._close()
        final = self._snapshot(done=True)
        self._final = final
        usage: dict[str, Any] = {"output_tokens": final["usage"]["output_tokens"]}
        if self.usage is not None:
            usage |= {key: value for key, value in final["usage"].items() if key != "output_tokens"}
        out += self._event("message_delta", delta={"stop_reason": final["stop_reason"],
                                                   "stop_sequence": final["stop_sequence"]}, usage=usage)
        return out + self._event("message_stop")

    def fail(self, type: str, message: str) -> bytes:
        """An `error` event, as Anthropic ends a stream that failed midway."""
        return self._event("error", error={"type": type, "message": message})

    @property
    def message(self) -> dict:
        """The final message; before `finish`, the message as it stands."""
        return self._final if self._final is not None else self._snapshot()

    # --- one chat chunk ---

    def _chunk(self, chunk: Any) -> bytes:
        if not isinstance(chunk, dict):
            return b""
        if isinstance(chunk.get("usage"), dict) and chunk["usage"]:
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        choice: dict = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        for key in ("stop_reason", "matched_stop"):     # the stop sequence, where the backend tells it
            if isinstance(choice.get(key), str):
                self._matched_stop = choice[key]
        delta: dict = choice["delta"] if isinstance(choice.get("delta"), dict) else {}
        out = b""
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            out += self._delta("thinking", reasoning)
        if isinstance(delta.get("content"), str) and delta["content"]:
            out += self._delta("text", delta["content"])
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            self._refused = True
            out += self._delta("text", delta["refusal"])
        calls = delta.get("tool_calls")
        for fragment in calls if isinstance(calls, list) else ():
            if isinstance(fragment, dict):
                out += self._call_fragment(fragment)
        return out + self._next_call()

    def _delta(self, kind: str, text: str) -> bytes:
        out = b""
        if self._open is None or self._blocks[self._open]["type"] != kind:
            out += self._close()
            out += self._start({"type": "text", "text": ""} if kind == "text"
                               else {"type": "thinking", "thinking": "", "signature": ""})
        index = len(self._blocks) - 1
        self._blocks[index][kind] += text
        delta = {"type": "text_delta", "text": text} if kind == "text" else {"type": "thinking_delta",
                                                                              "thinking": text}
        return out + self._event("content_block_delta", index=index, delta=delta)

    def _call_fragment(self, fragment: dict) -> bytes:
        function: dict = fragment["function"] if isinstance(fragment.get("function"), dict) else {}
        index = fragment.get("index", 0)
        index = index if isinstance(index, int) else 0
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(index, fragment.get("id"), function.get("name"))
            self._waiting.append(call)
            self._waiting.sort(key=lambda c: c.index)
        elif isinstance(function.get("name"), str) and call.block is None:
            call.name += function["name"]     # a few upstreams send the name in pieces
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not arguments:
            return b""
        call.arguments += arguments
        if call.block is not None and call.block == self._open:
            return self._json_delta(arguments)
        return b""    # waiting, or (from a faulty upstream) already closed: the final message still has it

    def _next_call(self) -> bytes:
        """Opens waiting calls while the open block may close: it is not a tool call, or its call is whole."""
        out = b""
        while self._waiting and (self._open is None or self._open not in self._block_calls
                                 or _whole(self._block_calls[self._open].arguments)):
            out += self._close() + self._open_call(self._waiting.pop(0))
        return out

    def _open_call(self, call: _Call) -> bytes:
        block = tool_use_block(call.call_id, call.name, {})
        call.call_id = block["id"]
        out = self._start(block)
        assert self._open is not None
        call.block = self._open
        self._block_calls[self._open] = call
        return out + (self._json_delta(call.arguments) if call.arguments else b"")

    # --- blocks ---

    def _start(self, block: dict) -> bytes:
        self._blocks.append(block)
        self._open = len(self._blocks) - 1
        return self._event("content_block_start", index=self._open, content_block=block)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return self._event("content_block_stop", index=index)

    def _json_delta(self, fragment: str) -> bytes:
        return self._event("content_block_delta", index=self._open,
                           delta={"type": "input_json_delta", "partial_json": fragment})

    # --- rendering ---

    def _snapshot(self, done: bool = False) -> dict:
        content = [{**block, "input": tool_input(self._block_calls[i].arguments)} if i in self._block_calls
                   else dict(block) for i, block in enumerate(self._blocks)]
        reason, sequence = stop_reason(self._finish_reason, bool(self._calls), self._matched_stop, self._refused) \
            if done else (None, None)
        return {"id": self._message_id, "type": "message", "role": "assistant", "model": self._model,
                "content": content, "stop_reason": reason, "stop_sequence": sequence,
                "usage": message_usage(self.usage, self._input_tokens_estimate)}

    def _event(self, kind: str, **fields: Any) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def _whole(arguments: str) -> bool:
    """Whether tool call arguments are a whole JSON object: nothing more can follow without breaking it."""
    try:
        return isinstance(orjson.loads(arguments), dict)
    except orjson.JSONDecodeError:
        return False
