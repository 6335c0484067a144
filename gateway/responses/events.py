"""A chat completions stream as a Responses API event stream.

The chat stream says little about structure: reasoning text, answer text, refusal text and tool call
fragments (interleaved by `index`) arrive as deltas. The Responses stream wraps each in an output item
that is opened (`.added`), filled (`.delta`), and closed (`.done`), each event numbered in order. Text and
reasoning are one open item at a time; tool calls stay open until the stream ends, because chat may
interleave their arguments.
"""
from __future__ import annotations

from typing import Any

import orjson

from gateway.responses import tools
from gateway.responses.answer import (
    build_response,
    finish_status,
    message_item,
    new_id,
    reasoning_item,
)
from providers import sse

# codes a Response's error may carry (ResponseErrorCode in OpenAI's document, and the two more that Codex acts
# on, as OpenAI sends them); anything else is a server_error
_ERROR_CODES = frozenset({"context_length_exceeded", "insufficient_quota",
                          "server_error", "rate_limit_exceeded", "invalid_prompt", "invalid_image",
                          "invalid_image_format", "invalid_base64_image", "invalid_image_url", "image_too_large",
                          "image_too_small", "image_parse_error", "image_content_policy_violation",
                          "invalid_image_mode", "image_file_too_large", "unsupported_image_media_type",
                          "empty_image_file", "failed_to_download_image", "image_file_not_found"})


class _Part:
    """One content part of the open message: answer text or refusal text."""
    __slots__ = ("kind", "text")

    def __init__(self, kind: str) -> None:
        self.kind = kind      # "output_text" or "refusal"
        self.text = ""

    def value(self) -> dict:
        if self.kind == "refusal":
            return {"type": "refusal", "refusal": self.text}
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}


class _Call:
    """One tool call being streamed, keyed by its chat `index`."""
    __slots__ = ("item_id", "output_index", "call_id", "name", "arguments")

    def __init__(self, output_index: int, call_id: str, name: str) -> None:
        self.item_id = new_id("fc_")
        self.output_index = output_index
        self.call_id = call_id
        self.name = name
        self.arguments = ""


class StreamTranslator:
    """Feed it the chat stream's SSE bytes; it answers the Responses SSE bytes to send on."""

    def __init__(self, request: dict, *, response_id: str, created_at: int, model: str) -> None:
        self._request = request
        self._response_id = response_id
        self._created_at = created_at
        self._model = model
        self._sequence = 0
        self._output: list[dict] = []        # items in output order; open ones are finished in place
        self._reasoning: int | None = None   # output index of the open reasoning item
        self._reasoning_text = ""
        self._message: int | None = None     # output index of the open message item
        self._parts: list[_Part] = []        # the open message's parts, the last one open
        self._calls: dict[int, _Call] = {}   # open tool calls by chat index
        self._finish_reason: Any = None
        self._service_tier: Any = None
        self._final: dict | None = None
        self._names = tools.declared_names(request)    # custom and namespaced tools, by chat name
        self.usage: dict | None = None

    # --- the public steps ---

    def start(self) -> bytes:
        snapshot = self._snapshot("in_progress")
        return self._event("response.created", response=snapshot) + self._event("response.in_progress",
                                                                                   response=snapshot)

    def feed(self, chunk_bytes: bytes) -> bytes:
        """Responses events for chat SSE bytes holding whole events; `[DONE]` and comments give nothing.
        A data line that is not JSON raises ValueError (orjson's): the caller ends the stream with `fail`."""
        return b"".join([self._chunk(chunk) for chunk in sse.chat_chunks(chunk_bytes)])

    def finish(self) -> bytes:
        status, reason = finish_status(self._finish_reason)
        out = self._close_reasoning() + self._close_message("incomplete" if status == "incomplete" else "completed")
        for index in sorted(self._calls):
            out += self._close_call(self._calls.pop(index))
        self._final = self._snapshot(status, reason)
        event = "response.incomplete" if status == "incomplete" else "response.completed"
        return out + self._event(event, response=self._final)

    def fail(self, message: str, type: str, code: str | None) -> bytes:
        """Ends the stream as failed; open items are left as they were, marked incomplete."""
        if code not in _ERROR_CODES:
            code = "rate_limit_exceeded" if type in ("rate_limit_error", "rate_limit_exceeded") else "server_error"
        for item in self._output:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        self._final = self._snapshot("failed", error={"code": code, "message": message})
        return self._event("response.failed", response=self._final)

    @property
    def response(self) -> dict:
        """The final Response object; before `finish` or `fail`, the response as it stands."""
        return self._final if self._final is not None else self._snapshot("in_progress")

    # --- one chat chunk ---

    def _chunk(self, chunk: Any) -> bytes:
        if not isinstance(chunk, dict):
            return b""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if chunk.get("service_tier") is not None:
            self._service_tier = chunk["service_tier"]
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        out = b""
        if delta.get("reasoning_content"):
            out += self._reasoning_delta(delta["reasoning_content"])
        if delta.get("content"):
            out += self._text_delta("output_text", delta["content"])
        if delta.get("refusal"):
            out += self._text_delta("refusal", delta["refusal"])
        for call in delta.get("tool_calls") or ():
            out += self._call_delta(call)
        return out

    def _reasoning_delta(self, text: str) -> bytes:
        out = b""
        if self._reasoning is None:
            out += self._close_message("completed")
            self._reasoning = self._add_item(reasoning_item(new_id("rs_"), None) | {"status": "in_progress"})
            out += self._item_event("response.output_item.added", self._reasoning)
            out += self._summary_event("response.reasoning_summary_part.added",
                                       part={"type": "summary_text", "text": ""})
        self._reasoning_text += text
        return out + self._summary_event("response.reasoning_summary_text.delta", delta=text)

    def _text_delta(self, kind: str, text: str) -> bytes:
        out = self._close_reasoning()
        if self._message is None:
            self._message = self._add_item(message_item(new_id("msg_"), [], "in_progress"))
            out += self._item_event("response.output_item.added", self._message)
        if not self._parts or self._parts[-1].kind != kind:
            out += self._close_part()
            self._parts.append(_Part(kind))
            out += self._part_event("response.content_part.added", part=_Part(kind).value())
        self._parts[-1].text += text
        if kind == "refusal":
            return out + self._part_event("response.refusal.delta", delta=text)
        return out + self._part_event("response.output_text.delta", delta=text, logprobs=[])

    def _call_delta(self, fragment: Any) -> bytes:
        if not isinstance(fragment, dict):
            return b""
        function = fragment.get("function") or {}
        index = fragment.get("index", 0)
        out = b""
        call = self._calls.get(index)
        if call is None:
            out += self._close_reasoning() + self._close_message("completed")
            call = _Call(len(self._output), fragment.get("id") or new_id("call_"), function.get("name") or "")
            self._calls[index] = call
            item = tools.call_item(call.item_id, call.call_id, call.name, "", self._names, "in_progress")
            if item["type"] == "custom_tool_call":
                call.item_id = item["id"] = new_id("ctc_")
            self._output.append(item)
            out += self._item_event("response.output_item.added", call.output_index)
        elif function.get("name"):
            call.name += function["name"]     # a few upstreams send the name in pieces
        if function.get("arguments"):
            call.arguments += function["arguments"]
            if self._output[call.output_index]["type"] == "function_call":
                out += self._event("response.function_call_arguments.delta", item_id=call.item_id,
                                   output_index=call.output_index, delta=function["arguments"])
            # a custom tool's input is the text inside {"input": ...}: sent whole when the call ends
        return out

    # --- closing items ---

    def _close_reasoning(self) -> bytes:
        if self._reasoning is None:
            return b""
        text, self._reasoning_text = self._reasoning_text, ""
        part = {"type": "summary_text", "text": text}
        out = self._summary_event("response.reasoning_summary_text.done", text=text)
        out += self._summary_event("response.reasoning_summary_part.done", part=part)
        self._output[self._reasoning] = reasoning_item(self._output[self._reasoning]["id"], text)
        out += self._item_event("response.output_item.done", self._reasoning)
        self._reasoning = None
        return out

    def _close_message(self, status: str) -> bytes:
        if self._message is None:
            return b""
        out = self._close_part()
        item = self._output[self._message]
        item["content"] = [part.value() for part in self._parts]
        item["status"] = status
        out += self._item_event("response.output_item.done", self._message)
        self._message, self._parts = None, []
        return out

    def _close_part(self) -> bytes:
        if not self._parts:
            return b""
        part = self._parts[-1]
        if part.kind == "refusal":
            out = self._part_event("response.refusal.done", refusal=part.text)
        else:
            out = self._part_event("response.output_text.done", text=part.text, logprobs=[])
        return out + self._part_event("response.content_part.done", part=part.value())

    def _close_call(self, call: _Call) -> bytes:
        item = tools.call_item(call.item_id, call.call_id, call.name, call.arguments, self._names)
        self._output[call.output_index] = item
        if item["type"] == "custom_tool_call":
            text = item["input"]
            out = self._event("response.custom_tool_call_input.delta", item_id=call.item_id,
                              output_index=call.output_index, delta=text)
            out += self._event("response.custom_tool_call_input.done", item_id=call.item_id,
                               output_index=call.output_index, input=text)
        else:
            out = self._event("response.function_call_arguments.done", item_id=call.item_id,
                              output_index=call.output_index, name=item["name"], arguments=call.arguments)
        return out + self._item_event("response.output_item.done", call.output_index)

    # --- rendering ---

    def _add_item(self, item: dict) -> int:
        self._output.append(item)
        return len(self._output) - 1

    def _snapshot(self, status: str, reason: str | None = None, error: dict | None = None) -> dict:
        output = [dict(item) for item in self._output]    # a copy: open items change after this is sent
        return build_response(self._request, response_id=self._response_id, created_at=self._created_at,
                              model=self._model, status=status, output=output, usage=self.usage,
                              incomplete_reason=reason, error=error, service_tier=self._service_tier)

    def _item_event(self, kind: str, output_index: int) -> bytes:
        return self._event(kind, output_index=output_index, item=self._output[output_index])

    def _summary_event(self, kind: str, **fields: Any) -> bytes:
        assert self._reasoning is not None
        return self._event(kind, item_id=self._output[self._reasoning]["id"], output_index=self._reasoning,
                           summary_index=0, **fields)

    def _part_event(self, kind: str, **fields: Any) -> bytes:
        assert self._message is not None
        return self._event(kind, item_id=self._output[self._message]["id"], output_index=self._message,
                           content_index=len(self._parts) - 1, **fields)

    def _event(self, kind: str, **fields: Any) -> bytes:
        body = orjson.dumps({"type": kind, **fields, "sequence_number": self._sequence})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + body + b"\n\n"
