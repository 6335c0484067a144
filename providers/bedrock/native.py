"""Anthropic's Messages API on Bedrock's Claude models, natively: InvokeModel
(`/model/{id}/invoke`, `/invoke-with-response-stream`) takes Anthropic's own
body, with `anthropic_version` in it instead of the model and the stream flag
(and the client's `anthropic-beta` as `anthropic_beta`). A whole answer is
Anthropic's message as it is; a stream comes in `chunk` frames, each holding one
of Anthropic's stream events (base64 JSON), which go on as Anthropic's SSE."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from providers.anthropic.answer import usage
from providers.base import Native, Reply
from providers.errors import UpstreamFault

BEDROCK_VERSION = "bedrock-2023-05-31"
PATHS = {False: "invoke", True: "invoke-with-response-stream"}


def takes(model: str) -> bool:
    """Whether a Bedrock model id (or inference profile) is one of Anthropic's."""
    return "anthropic." in model.lower()


def body(n: Native) -> bytes:
    doc: dict[str, Any] = {k: v for k, v in n.data.items() if k not in ("model", "stream")}
    doc["anthropic_version"] = BEDROCK_VERSION
    betas = [b.strip() for b in n.headers.get("anthropic-beta", "").split(",") if b.strip()]
    if betas:
        doc["anthropic_beta"] = betas
    return orjson.dumps(doc)


class Events:
    """`chunk` frames as Anthropic's SSE, counting usage into the reply as they go."""

    def __init__(self, reply: Reply, provider: str) -> None:
        self.reply = reply
        self.provider = provider
        self.counts: dict[str, Any] = {}

    def sse(self, payload: bytes) -> bytes:
        try:
            data = base64.b64decode(orjson.loads(payload)["bytes"], validate=True)
            event = orjson.loads(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error):
            raise UpstreamFault(f"provider '{self.provider}' sent a chunk that is not an event",
                                provider=self.provider, code="upstream_malformed") from None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise UpstreamFault(f"provider '{self.provider}' sent a chunk that is not an event",
                                provider=self.provider, code="upstream_malformed")
        found = (event.get("message") or {}).get("usage") if event["type"] == "message_start" else event.get("usage")
        if isinstance(found, dict):
            self.counts.update((k, v) for k, v in found.items() if v is not None)
            self.reply.usage = usage(self.counts)
        return b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n"
