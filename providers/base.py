"""The interface every provider adapter offers the router."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, ClassVar

from gateway.config.schema import ProviderConfig
from providers.errors import BadRequest


@dataclass(slots=True)
class Call:
    """One attempt, as the router hands it to a provider."""
    op: str                  # "chat" | "embeddings"
    body: bytes              # the client's JSON body, untouched
    data: dict[str, Any]     # the same body, parsed; read-only
    model: str               # the upstream model name for this target
    stream: bool = False
    request_id: str = ""


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's terms, whichever provider answered: what cost
    tracking reads. `prompt_tokens` includes cached ones (as OpenAI counts)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0          # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0     # prompt tokens written to it (Anthropic, Bedrock)


@dataclass(slots=True)
class Reply:
    """A successful answer: a whole body, or SSE bytes that hold whole events."""
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    content_type: bytes = b"application/json"
    close: Callable[[], Awaitable[None] | None] | None = None
    # Streams fill `usage` in as they end; a body passed through untouched is
    # read for it only when asked (`read_usage`), off the answer's path.
    usage: Usage | None = None
    usage_parser: Callable[[bytes], Usage | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def read_usage(self) -> Usage | None:
        if self.usage is None and self.usage_parser is not None and self.body:
            self.usage = self.usage_parser(self.body)
        return self.usage

    async def aclose(self) -> None:
        """Let go of the upstream answer, read to the end or not."""
        closer = getattr(self.chunks, "aclose", None)
        if closer is not None:
            await closer()
        if self.close is not None:
            res = self.close()
            if res is not None:
                await res


class Provider:
    """An upstream the router can send calls to.

    Subclasses set `Options` (their config fields, checked by `gateway check`)
    and implement the operations they support; an unsupported one answers a
    clear 400 through `BadRequest`.
    """
    Options: ClassVar[type[ProviderConfig]] = ProviderConfig
    secret_field: ClassVar[str | None] = None   # an option that must be non-empty, else disabled
    operations: ClassVar[frozenset[str]] = frozenset({"chat"})

    def __init__(self, options: ProviderConfig) -> None:
        self.options = options
        self.name = options.name

    @classmethod
    def disabled_reason(cls, options: ProviderConfig) -> str | None:
        if not options.enabled:
            return "enabled: false"
        if cls.secret_field and not getattr(options, cls.secret_field, ""):
            return f"{cls.secret_field} is empty"
        return None

    async def chat(self, call: Call) -> Reply:
        raise self.unsupported("chat")

    async def embeddings(self, call: Call) -> Reply:
        raise self.unsupported("embeddings")

    def unsupported(self, op: str) -> BadRequest:
        return BadRequest(f"provider '{self.name}' does not support {op}", provider=self.name,
                          code="unsupported_operation")

    async def close(self) -> None:
        return None
