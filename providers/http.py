"""The pooled HTTP client that adapters send through.

aiohttp rather than httpx on this path: in bench/ it passes through several
times the requests per second at the same CPU (see README, Speed).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, TypeVar

import aiohttp
import yarl
from pydantic import ConfigDict, Field

from providers import sse
from providers.base import Call, Provider, Reply, Usage
from providers.errors import ConnectionFailed, ProviderError, UpstreamFault, UpstreamTimeout
from providers.options import ProviderConfig

_MAX_ERROR_BODY = 64 * 1024
_BROKEN = (aiohttp.ClientError, TimeoutError)


@dataclass(slots=True)
class UpstreamRequest:
    """Where and how to send one call: what an adapter's pure code decides."""
    url: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"


class Upstream:
    """One provider's connection pool (keep-alive, HTTP/1.1)."""

    def __init__(self, provider: str, *, max_connections: int = 256, idle_timeout_s: float = 300) -> None:
        self.provider = provider
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s   # longest silence between stream chunks
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created lazily: a session belongs to the event loop that first uses it.
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300,
                                         keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_read=self._idle_timeout_s),
            skip_auto_headers=("User-Agent",),
        )
        return self._session

    async def send(self, req: UpstreamRequest) -> aiohttp.ClientResponse:
        session = self._session or self._open()
        try:
            # encoded=True: the URL goes out exactly as the adapter built (and, for
            # Bedrock, signed) it; yarl would otherwise re-normalise escapes like %3A.
            return await session.request(req.method, yarl.URL(req.url, encoded=True), data=req.body,
                                         headers=req.headers)
        except aiohttp.ClientConnectorError as e:
            raise ConnectionFailed(f"provider '{self.provider}' is unreachable: {e.os_error.strerror or e}",
                                   provider=self.provider) from None
        except _BROKEN as e:
            raise self._failure(e, "connection failed") from None

    async def read(self, resp: aiohttp.ClientResponse) -> bytes:
        try:
            return await resp.read()
        except _BROKEN as e:
            raise self._failure(e, "broke the answer off") from None

    def _failure(self, e: BaseException, what: str) -> ProviderError:
        if isinstance(e, TimeoutError):    # aiohttp's read timeouts are these too
            return UpstreamTimeout(f"provider '{self.provider}' timed out", provider=self.provider)
        return UpstreamFault(f"provider '{self.provider}' {what}: {type(e).__name__}", provider=self.provider)

    async def read_error(self, resp: aiohttp.ClientResponse) -> bytes:
        """An error answer's body, at most 64 KiB of it; whatever arrived if the
        connection breaks (the status already says what kind of failure it is)."""
        data = bytearray()
        try:
            async for chunk in resp.content.iter_chunked(16384):
                data += chunk
                if len(data) >= _MAX_ERROR_BODY:
                    break
        except _BROKEN:
            pass
        finally:
            resp.release()
        return bytes(data[:_MAX_ERROR_BODY])

    async def chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The answer's bytes as they arrive."""
        try:
            async for data in resp.content.iter_any():
                yield data
        except _BROKEN as e:
            raise self._failure(e, "broke the stream off") from None
        finally:
            resp.release()

    async def sse_blocks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        """The stream's bytes, cut only between events, so an error that ends
        the stream never lands in the middle of one."""
        pending = b""
        try:
            async for data in resp.content.iter_any():
                if pending:
                    data = pending + data
                end = _events_end(data)
                if not end:
                    pending = data
                    continue
                pending = data[end:]
                yield data[:end] if pending else data
        except _BROKEN as e:
            raise self._failure(e, "broke the stream off") from None
        finally:
            resp.release()
        if pending.strip():
            yield pending + b"\n\n"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _events_end(data: bytes) -> int:
    """Offset just past the last complete SSE event in `data` (0: none)."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def retry_after(headers) -> float | None:
    """Seconds from `retry-after` / `retry-after-ms`, if the provider sent them."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    return None


class HttpOptions(ProviderConfig):
    """Options every provider reached over HTTP has."""
    model_config = ConfigDict(extra="forbid")
    base_url: str = ""
    api_key: str = ""
    headers: dict[str, str] = Field(default_factory=dict)   # sent on every call
    max_connections: int = Field(256, ge=1)                  # pooled keep-alive connections
    idle_timeout_s: float = Field(300, gt=0)                 # longest silence inside a stream


HttpOptionsT = TypeVar("HttpOptionsT", bound=HttpOptions)


class StreamTranslator(Protocol):
    """Turns one provider stream into OpenAI chunks, event by event (pure)."""
    usage: Usage

    def feed(self, event: str | None, data: bytes) -> list[dict]: ...

    def end(self) -> list[dict]: ...


class HttpProvider(Provider[HttpOptionsT]):
    """A provider reached over HTTP. Adapters supply the pure parts: where and
    what to send (`request`), how to read an answer (`answer`), a stream
    (`translator`) and an error (`error`); this class does the exchange."""

    Options: ClassVar[type[ProviderConfig]] = HttpOptions   # annotated, or mypy holds adapters to type[HttpOptions]

    def __init__(self, options: HttpOptionsT) -> None:
        super().__init__(options)
        self.upstream = Upstream(self.name, max_connections=options.max_connections,
                                 idle_timeout_s=options.idle_timeout_s)

    # -- what each adapter provides -------------------------------------------

    def request(self, call: Call) -> UpstreamRequest:
        raise self.unsupported(call.op)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return UpstreamFault(f"provider '{self.name}' answered {status}", provider=self.name,
                             upstream_status=status)

    def answer(self, call: Call, body: bytes) -> Reply:
        return Reply(body=body)

    async def roundtrip(self, req: UpstreamRequest) -> bytes:
        """Send and read a whole answer; a status of 300 or more raises `error`'s kind."""
        resp = await self.upstream.send(req)
        if resp.status >= 300:
            raise self.error(resp.status, await self.upstream.read_error(resp), resp.headers)
        return await self.upstream.read(resp)

    def translator(self, call: Call) -> StreamTranslator | None:
        """None: the provider streams OpenAI's chunks already; relay them as they are."""
        return None

    def relay(self, call: Call, blocks: AsyncIterator[bytes], reply: Reply) -> AsyncIterator[bytes]:
        """A stream already in OpenAI's format, on its way to the client as it is."""
        return blocks

    def events(self, resp: aiohttp.ClientResponse) -> AsyncIterator[list[tuple[str | None, bytes]]]:
        """The upstream stream as batches of (event, data); SSE unless overridden."""
        return self._sse_events(resp)

    # -- the exchange ----------------------------------------------------------

    async def chat(self, call: Call) -> Reply:
        return await self._exchange(call)

    async def embeddings(self, call: Call) -> Reply:
        return await self._exchange(call)

    async def _exchange(self, call: Call) -> Reply:
        resp = await self.upstream.send(self.request(call))
        if resp.status >= 300:
            raise self.error(resp.status, await self.upstream.read_error(resp), resp.headers)
        if not call.stream:
            return self.answer(call, await self.upstream.read(resp))
        reply = Reply(content_type=b"text/event-stream", close=resp.release)
        translator = self.translator(call)
        if translator is None:
            reply.chunks = self.relay(call, self.upstream.sse_blocks(resp), reply)
        else:
            reply.chunks = _translated(translator, self.events(resp), reply)
        return reply

    async def _sse_events(self, resp: aiohttp.ClientResponse) -> AsyncIterator[list[tuple[str | None, bytes]]]:
        async for block in self.upstream.sse_blocks(resp):
            yield list(sse.events(block))

    async def close(self) -> None:
        await self.upstream.close()


async def _translated(translator: StreamTranslator, batches: AsyncIterator[list[tuple[str | None, bytes]]],
                      reply: Reply) -> AsyncIterator[bytes]:
    """OpenAI SSE bytes from a provider's events: one write per upstream batch."""
    async for batch in batches:
        out = b"".join(sse.encode(c) for event, data in batch for c in translator.feed(event, data))
        if out:
            yield out
    tail = b"".join(sse.encode(c) for c in translator.end())
    reply.usage = translator.usage
    yield tail + sse.DONE


__all__ = ["HttpOptions", "HttpProvider", "StreamTranslator", "Upstream", "UpstreamRequest", "retry_after"]
