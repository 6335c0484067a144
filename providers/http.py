"""The pooled HTTP client that adapters send through.

aiohttp rather than httpx on this path: in bench/ it passes through several
times the requests per second at the same CPU (see README, Speed).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import AsyncIterator

import aiohttp

from providers.errors import ConnectionFailed, ProviderError, UpstreamFault, UpstreamTimeout

_MAX_ERROR_BODY = 64 * 1024
_BROKEN = (aiohttp.ClientError, asyncio.TimeoutError)


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
            return await session.request(req.method, req.url, data=req.body, headers=req.headers)
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
        if isinstance(e, asyncio.TimeoutError):    # aiohttp's read timeouts are these too
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
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        finally:
            resp.release()
        return bytes(data[:_MAX_ERROR_BODY])

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


__all__ = ["Upstream", "UpstreamRequest", "ProviderError", "retry_after"]
