"""Anthropic's Messages API spoken natively: a `/v1/messages` request goes up
as the client wrote it, with only `model` changed and the client's
`anthropic-version` / `anthropic-beta` headers kept; the answer comes back
untouched. What the gateway needs of it is read here: the usage, from the
whole message or from the stream's `message_start` and `message_delta`."""
from __future__ import annotations

from typing import Any

from providers import sse
from providers.anthropic.answer import usage
from providers.base import Reply

# The events that carry usage: the input counts at the start, the output count at the end.
_COUNTED = (b'"message_start"', b'"message_delta"')


def headers(configured: dict[str, str], client: dict[str, str]) -> dict[str, str]:
    """The configured headers, with the client's version and beta features (the client knows what
    its body needs); betas the config names are kept too."""
    out = dict(configured)
    if client.get("anthropic-version"):
        out["anthropic-version"] = client["anthropic-version"]
    betas = [b for b in (configured.get("anthropic-beta", ""), client.get("anthropic-beta", "")) if b]
    if betas:
        out["anthropic-beta"] = ",".join(dict.fromkeys(x.strip() for b in betas for x in b.split(",") if x.strip()))
    return out


def watch(reply: Reply) -> sse.Watch:
    """Relays a Messages stream untouched, counting its usage as it goes by."""
    counts: dict[str, Any] = {}

    def note(block: bytes) -> bytes:
        for event in sse.objects_if(block, _COUNTED):
            found = (event.get("message") or {}).get("usage") if event.get("type") == "message_start" \
                else event.get("usage")
            if isinstance(found, dict):
                counts.update((k, v) for k, v in found.items() if v is not None)
                reply.usage = usage(counts)
        return block
    return note
