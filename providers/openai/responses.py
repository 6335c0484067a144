"""OpenAI's Responses API spoken natively (`POST {base}/responses`): the
client's body goes up with only `model` changed, and the answer comes back
untouched. What the gateway needs of it is read here: the usage, and the
final `response` object (to keep it for `previous_response_id`)."""
from __future__ import annotations

from typing import Any

from providers import sse
from providers.base import Reply, Usage

PATH = "/responses"
# The events that close a Responses stream, each carrying the whole response.
_CLOSING = (b'"response.completed"', b'"response.incomplete"', b'"response.failed"')


def usage_in(doc: dict[str, Any]) -> Usage | None:
    """A Response object's usage in the gateway's (chat) terms."""
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(prompt_tokens=_count(usage.get("input_tokens")), completion_tokens=_count(usage.get("output_tokens")),
                 cached_tokens=_count(cached))


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def watch(reply: Reply) -> sse.Watch:
    """Relays a Responses stream untouched, keeping the closing event's response
    (and its usage) in the reply. Only an event naming a closing event is parsed."""
    def note(block: bytes) -> bytes:
        for event in sse.objects_if(block, _CLOSING):
            response = event.get("response")
            if isinstance(response, dict):
                reply.extra["response"] = response
                reply.usage = usage_in(response)
        return block
    return note
