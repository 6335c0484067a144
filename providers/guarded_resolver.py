"""The SSRF guard at connection time, for aiohttp clients (webhook deliveries,
`input_reference` downloads): the addresses a host resolves to are checked
again when connecting, so a name that resolves differently after the
submission-time check (DNS rebinding) still cannot reach a refused address.

A module of its own so that aiohttp (about 10 MiB resident) is loaded only by
a process that makes such a call, never by the request path.
"""
from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from providers.netcheck import blocked_reason, host_allowed


class GuardedResolver(AbstractResolver):
    """Resolves as usual, then drops every address the guard refuses, so the
    connection can only go where the check said it may."""

    def __init__(self, policy: Callable[[], Any]) -> None:
        # policy(): an object with `allow_private_urls` and `allow_hosts` (e.g. the config's `webhooks`)
        self._inner = DefaultResolver()
        self._policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        hooks = self._policy()
        if hooks.allow_private_urls or host_allowed(host, port, hooks.allow_hosts):
            return found
        kept = [a for a in found if blocked_reason(a["host"]) is None]
        if not kept:
            raise OSError(f"{host} resolves only to addresses the gateway may not reach")
        return kept

    async def close(self) -> None:
        await self._inner.close()
