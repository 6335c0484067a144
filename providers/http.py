"""What adapters send through: one provider's upstream (its connection pool,
providers/connections.py), redirects decided per origin, answers read with caps,
streams cut into whole events.
"""
from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import orjson
import yarl
from pydantic import ConfigDict, Field, field_validator

from providers import sse, trace
from providers.base import Call, Provider, Reply, Usage
from providers.connections import BROKEN, Answer, ConnectFailed, Pool, StreamedBody
from providers.errors import ConnectionFailed, ProviderError, UpstreamFault, UpstreamTimeout
from providers.options import ProviderConfig
from providers.sse_blocks import SseBlocks

if TYPE_CHECKING:
    from providers.batching import NativeBatches

_MAX_ERROR_BODY = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_HOPS = 5
MAX_EVENT_BYTES = 1024 * 1024    # one SSE event larger than this ends the stream (option max_event_bytes)
MAX_ANSWER_BYTES = 256 * 1024 * 1024   # a whole answer (large embedding batches run to ~60 MB)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Public:
    """The guarded session's policy: public addresses only, no host trusted as is."""
    allow_private_urls = False
    allow_hosts: tuple[str, ...] = ()


def origin(url: str | yarl.URL) -> str:
    """`scheme://host:port`, lower-cased, the port always written: what "same origin" compares."""
    u = url if isinstance(url, yarl.URL) else yarl.URL(url, encoded=True)
    scheme = (u.scheme or "").lower()
    return f"{scheme}://{(u.host or '').lower().rstrip('.')}:{u.port or _DEFAULT_PORTS.get(scheme, 0)}"


def redirect_target(url: str, location: str) -> yarl.URL | None:
    """Where a redirect from `url` points (a relative Location resolved), or None if unusable."""
    if not location:
        return None
    try:
        target = yarl.URL(url, encoded=True).join(yarl.URL(location))
    except ValueError:
        return None
    return target if target.scheme in _DEFAULT_PORTS and target.host else None


def json_object(body: bytes, provider: str) -> dict[str, Any]:
    """`body` parsed, when it is one JSON object; anything else (HTML, a cut-off or
    non-JSON body, an array) is the upstream's fault, and fails over."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamFault(f"provider '{provider}' answered 200 with a body that is not JSON",
                            provider=provider, code="upstream_malformed") from None
    if not isinstance(doc, dict):
        raise UpstreamFault(f"provider '{provider}' answered 200 with JSON that is not an object",
                            provider=provider, code="upstream_malformed")
    return doc


@dataclass(slots=True)
class UpstreamRequest:
    """Where and how to send one call: what an adapter's pure code decides (a body too large
    to hold goes beside it, to `Upstream.send_streamed`)."""
    url: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"


class Upstream:
    """One provider's connection pool (keep-alive, HTTP/1.1)."""

    def __init__(self, provider: str, *, max_connections: int = 256, idle_timeout_s: float = 300,
                 follow_redirects: Iterable[str] = (), max_event_bytes: int = MAX_EVENT_BYTES,
                 max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.provider = provider
        self._max_connections = max_connections
        self._idle_timeout_s = idle_timeout_s   # longest silence between stream chunks
        self.follow = frozenset(origin(o) for o in follow_redirects)
        self.max_event_bytes = max_event_bytes
        self.max_answer_bytes = max_answer_bytes
        self._pool: Pool | None = None
        self._guarded: Pool | None = None

    def _open(self) -> Pool:
        self._pool = Pool(max_connections=self._max_connections, keepalive_s=30)
        return self._pool

    def _open_guarded(self) -> Pool:
        # Its resolver drops non-public addresses, so a name that re-resolves after the check (DNS rebinding) fails.
        self._guarded = Pool(max_connections=self._max_connections, resolve=_public_addresses)
        return self._guarded

    async def send(self, req: UpstreamRequest) -> Answer:
        """The answer to `req`. A redirect is followed only to an origin listed in
        `follow_redirects` (the credentials and the prompt would go with it);
        any other is the upstream's fault, so the call fails over."""
        resp = await self.open(req)
        if resp.status not in REDIRECTS:
            return resp
        return await self._follow(req, resp)

    async def send_streamed(self, req: UpstreamRequest, body: StreamedBody) -> Answer:
        """`send`, with `body` in place of `req.body`: made as it is sent (an upload read back from its
        spool), its length said up front, never chunked. A redirect that repeats the request (307,
        308) sends it again from the start."""
        resp = await self._open_streamed(req, body)
        if resp.status not in REDIRECTS:
            return resp
        return await self._follow(req, resp, body)

    async def _follow(self, req: UpstreamRequest, resp: Answer, body: StreamedBody | None = None) -> Answer:
        """The redirect `resp` followed, and those after it, at most MAX_HOPS in all."""
        for _ in range(MAX_HOPS):
            resp.release()
            target = redirect_target(req.url, resp.headers.get("location", ""))
            if target is None or origin(target) not in self.follow:
                raise self.redirect_fault(resp.status)
            status = resp.status
            req = redirected(req, status, target)
            if status not in (307, 308):
                body = None         # it is a GET now: nothing to send
            resp = await (self.open(req) if body is None else self._open_streamed(req, body))
            if resp.status not in REDIRECTS:
                return resp
        resp.release()
        raise self.redirect_fault(resp.status)

    def redirect_fault(self, status: int) -> UpstreamFault:
        # The Location is left out: it is the upstream's choice, not something to relay.
        return UpstreamFault(f"provider '{self.provider}' answered with a redirect ({status}); redirects are "
                             "followed only to origins listed in the provider's follow_redirects",
                             provider=self.provider, code="upstream_redirect", upstream_status=status)

    async def open(self, req: UpstreamRequest, *, guarded: bool = False) -> Answer:
        """One HTTP exchange, exactly as `req` says: a redirect comes back as it is.
        `guarded`: connect only to public addresses (a URL the provider handed back)."""
        pool = (self._guarded or self._open_guarded()) if guarded else (self._pool or self._open())
        headers = req.headers
        parent = trace.TRACEPARENT.get()
        if parent is not None:      # `_traced`, spelled out: a call saved on every traced request
            headers = {**headers, "traceparent": parent}
            state = trace.TRACESTATE.get()
            if state is not None:
                headers["tracestate"] = state
        try:
            return await pool.request(req.method, req.url, headers, req.body, self._idle_timeout_s)
        except (*BROKEN, ValueError) as e:
            raise self._unsent(e) from None

    async def _open_streamed(self, req: UpstreamRequest, body: StreamedBody) -> Answer:
        """`open` for a body sent in pieces."""
        pool = self._pool or self._open()
        headers = req.headers
        parent = trace.TRACEPARENT.get()
        if parent is not None:
            headers = _traced(headers, parent)
        try:
            return await pool.request_streamed(req.method, req.url, headers, body, self._idle_timeout_s)
        except (*BROKEN, ValueError) as e:
            raise self._unsent(e) from None

    def _unsent(self, e: Exception) -> ProviderError:
        """The failure of a request that got no answer, by its kind."""
        if isinstance(e, ConnectFailed):
            reason = e.os_error.strerror if e.os_error is not None and e.os_error.strerror else str(e)
            return ConnectionFailed(f"provider '{self.provider}' is unreachable: {reason}", provider=self.provider)
        if isinstance(e, BROKEN):
            return self._failure(e, "connection failed")
        # A URL or header that can't go out as it is (a line break, credentials in the URL beside
        # an Authorization header): a setting to fix, said as such, never a 500.
        return UpstreamFault(f"provider '{self.provider}' cannot call its URL as configured: credentials "
                             "in base_url conflict with its own Authorization header, or the URL or a "
                             "header is invalid", provider=self.provider)

    async def read(self, resp: Answer) -> bytes:
        """A whole answer, at most `max_answer_bytes` of it (more is the upstream's fault)."""
        try:
            if resp.content_length is not None and resp.content_length <= self.max_answer_bytes:
                return await resp.read()      # the usual case: one read, no copy
            data = await read_capped(resp, self.max_answer_bytes)
        except BROKEN as e:
            raise self._failure(e, "broke the answer off") from None
        finally:
            resp.release()
        if data is None:
            raise self.malformed(f"answered with a body over {self.max_answer_bytes} bytes")
        return data

    def _failure(self, e: BaseException, what: str) -> ProviderError:
        if isinstance(e, TimeoutError):    # the connection's idle timeout is one too
            return UpstreamTimeout(f"provider '{self.provider}' timed out", provider=self.provider)
        return UpstreamFault(f"provider '{self.provider}' {what}: {type(e).__name__}", provider=self.provider)

    async def read_error(self, resp: Answer) -> bytes:
        """An error answer's body, at most 64 KiB of it; whatever arrived if the
        connection breaks (the status already says what kind of failure it is)."""
        data = bytearray()
        try:
            async for chunk in resp.content.iter_chunked(16384):
                data += chunk
                if len(data) >= _MAX_ERROR_BODY:
                    break
        except BROKEN:
            pass
        finally:
            resp.release()
        return bytes(data[:_MAX_ERROR_BODY])

    async def chunks(self, resp: Answer) -> AsyncIterator[bytes]:
        """The answer's bytes as they arrive."""
        try:
            async for data in resp.content.iter_any():
                yield data
        except BROKEN as e:
            raise self._failure(e, "broke the stream off") from None
        finally:
            resp.release()

    def sse_blocks(self, resp: Answer, watch: sse.Watch | None = None) -> SseBlocks:
        """The stream's bytes, cut only between events, so an error that ends
        the stream never lands in the middle of one. Before the first block
        goes out the stream must be one: an event-stream content type and a
        first event whose data is a JSON object (or it fails over); an event
        longer than `max_event_bytes` ends it. Each block passes through `watch`
        (a plain call: no generator of its own between the upstream and the client)."""
        return SseBlocks(self, resp, watch)

    def check_first(self, block: bytes) -> bool:
        """Whether `block` holds the stream's first event (False: none yet). That
        event must parse: garbage fails over instead of reaching the client."""
        data = sse.first_data(block)      # the usual first event: one `data: {...}` line, found at once
        if data is None:
            data = next((d for _, d in sse.events(block)), None)
            if data is None:
                return False
        try:
            if isinstance(orjson.loads(data), dict):
                return True
        except orjson.JSONDecodeError:
            pass
        raise self.malformed("streamed a first event that is not a JSON object")

    def malformed(self, what: str) -> UpstreamFault:
        return UpstreamFault(f"provider '{self.provider}' {what}", provider=self.provider,
                             code="upstream_malformed")

    async def close(self) -> None:
        for pool in (self._pool, self._guarded):
            if pool is not None:
                await pool.close()
        self._pool = self._guarded = None


def _traced(headers: dict[str, str], parent: str) -> dict[str, str]:
    """`headers` and the request's trace context (W3C traceparent, tracestate), for the upstream to join."""
    headers = {**headers, "traceparent": parent}
    state = trace.TRACESTATE.get()
    if state is not None:
        headers["tracestate"] = state
    return headers


async def _public_addresses(host: str, port: int) -> list[str]:
    """The addresses of `host` the guard allows (public ones), or OSError."""
    from providers.guarded_resolver import GuardedResolver  # aiohttp: only where a guarded provider is used
    found = await GuardedResolver(_Public).resolve(host, port, socket.AF_UNSPEC)
    return [a["host"] for a in found]


def redirected(req: UpstreamRequest, status: int, target: yarl.URL) -> UpstreamRequest:
    """The request a redirect asks for: 307/308 repeat it; 301/302/303 turn it into a GET."""
    if status in (307, 308):
        return UpstreamRequest(str(target), req.body, req.headers, req.method)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in ("content-type", "content-length")}
    return UpstreamRequest(str(target), b"", headers, "GET" if req.method != "HEAD" else "HEAD")


async def read_capped(resp: Any, limit: int) -> bytes | None:
    """The whole body of an answer (ours, or aiohttp's: video references are fetched
    with it), or None once it passes `limit` bytes. (One `content.read(n)`
    returns after the first chunk that arrives: it is no way to read a body.)"""
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


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
    # Origins (scheme://host[:port]) a redirect may lead to, credentials and all;
    # any other redirect is an upstream fault. Empty: redirects are never followed.
    follow_redirects: list[str] = Field(default_factory=list)
    max_event_bytes: int = Field(MAX_EVENT_BYTES, ge=1024)   # one streamed event, at most
    max_answer_bytes: int = Field(MAX_ANSWER_BYTES, ge=1024)  # one whole (not streamed) answer, at most

    @field_validator("follow_redirects")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for entry in value:
            u = yarl.URL(entry)
            if u.scheme not in _DEFAULT_PORTS or not u.host or u.path not in ("", "/") or u.query_string:
                raise ValueError(f"'{entry}' is not an origin: write scheme://host[:port], e.g. https://api.example.com")
        return value


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
        self._batches: NativeBatches | None = None
        self.upstream = Upstream(self.name, max_connections=options.max_connections,
                                 idle_timeout_s=options.idle_timeout_s, follow_redirects=options.follow_redirects,
                                 max_event_bytes=options.max_event_bytes, max_answer_bytes=options.max_answer_bytes)

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

    def native_batches(self) -> NativeBatches | None:
        """The provider's own batch API for chat requests (providers/batching.py), where it has one
        and the config asks for it (`batch: native`); None: the gateway runs batches itself."""
        if getattr(self.options, "batch", "gateway") != "native":
            return None
        if self._batches is None:
            self._batches = self.batch_client()
        return self._batches

    def batch_client(self) -> NativeBatches | None:
        """A client of the provider's own batch API, for adapters that have one (made once, on first use)."""
        return None

    def translator(self, call: Call) -> StreamTranslator | None:
        """None: the provider streams OpenAI's chunks already; relay them as they are."""
        return None

    def watch(self, call: Call, reply: Reply) -> sse.Watch | None:
        """What each block of a stream already in the client's format passes through on its
        way (None: nothing, it goes as it is)."""
        return None

    def events(self, resp: Answer) -> AsyncIterator[list[tuple[str | None, bytes]]]:
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
            reply.chunks = self.upstream.sse_blocks(resp, self.watch(call, reply))
        else:
            reply.chunks = _translated(translator, self.events(resp), reply)
        return reply

    async def _sse_events(self, resp: Answer) -> AsyncIterator[list[tuple[str | None, bytes]]]:
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


__all__ = ["HttpOptions", "HttpProvider", "StreamTranslator", "StreamedBody", "Upstream", "UpstreamRequest",
           "json_object", "origin", "read_capped", "redirect_target", "redirected", "retry_after"]
