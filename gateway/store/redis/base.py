"""What every part of the Redis store shares: a pool of connections with the
key prefix, Lua scripts called by their SHA, and Redis's failures turned into
`StoreDown`.

A Redis that errs, or answers slower than the pool's timeout, raises
`StoreDown` (the caller applies its policy); nothing is retried, because a
retried admission might be charged twice and a retried create queue a job
twice. Broken connections are replaced as they are next taken from the pool,
so service resumes by itself when Redis is back.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from gateway.store.base import StoreDown
from gateway.store.redis.pipe import Pipe, ReplyError


class Script:
    """A Lua script, called by its SHA (Redis keeps the text once loaded)."""
    __slots__ = ("text", "sha")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


class Pool:
    """A client over a bounded pool of connections to one Redis, and the prefix
    every key goes under."""

    def __init__(self, url: str, prefix: str, timeout_s: float, connections: int, name: str) -> None:
        # A bounded pool that waits (up to the timeout) for a free connection: a burst
        # queues briefly rather than opening a connection per request or failing open.
        # RESP2: with RESP3, redis-py 8 turns on maintenance notifications, which skip its
        # check for connections the server closed, so each one left over from a Redis
        # restart would fail one request (seen in tests/test_limits_replicas.py).
        pool = BlockingConnectionPool.from_url(url, max_connections=connections, timeout=timeout_s,
                                               socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                               retry=Retry(NoBackoff(), 0), client_name=name, protocol=2)
        # Typed loosely on purpose: redis-py types answers as bytes | str whatever the client's
        # decode_responses; this client never decodes, so every answer here is bytes.
        self.redis: Any = Redis.from_pool(pool)
        self.prefix = prefix

    async def run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """One EVALSHA: one round trip, atomic on the server."""
        with talking():
            try:
                return await self.redis.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:      # a restarted or flushed Redis forgot the script
                await self.redis.script_load(script.text)
                return await self.redis.evalsha(script.sha, len(keys), *keys, *args)

    async def load(self, script: Script) -> None:
        with talking():
            await self.redis.script_load(script.text)

    async def close(self) -> None:
        await self.redis.aclose()


async def run_encoded(pipe: Pipe, script: Script, evalsha: bytes) -> Any:
    """One EVALSHA of `script`, already in RESP, on the pipelined connection (loading
    the script when Redis forgot it)."""
    try:
        return await pipe.call_encoded(evalsha)
    except ReplyError as e:
        if not str(e).startswith("NOSCRIPT"):
            raise StoreDown(f"Redis: {e}") from None
    try:
        await pipe.call("SCRIPT", "LOAD", script.text)
        return await pipe.call_encoded(evalsha)
    except ReplyError as e:
        raise StoreDown(f"Redis: {e}") from None


@contextmanager
def talking() -> Iterator[None]:
    """Whatever goes wrong while talking to Redis is Redis being down: redis-py's own
    errors, and what slips past them (uvloop raises RuntimeError on a closed transport)."""
    try:
        yield
    except StoreDown:
        raise
    except Exception as e:
        raise StoreDown(f"Redis: {e!r}") from e
