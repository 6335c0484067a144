"""Webhook delivery: events go into the store's outbox in the same atomic step
that finishes their job, and a sender in every gateway process takes due ones
out, POSTs them signed, and records each attempt. A failed attempt is retried
after `backoff_s`, doubling up to `max_backoff_s`, until `max_attempts`; a
sender that dies mid-attempt leaves the delivery to be taken again once its
lease lapses. So an event is delivered at least once and, short of a crash
between a receiver's 2xx and its record, exactly once.

Attempts do not wait on each other: up to `_MOST_IN_FLIGHT` run at once, at
most `_PER_DESTINATION` of them to one receiver (scheme, host and port), so a
slow or dead receiver holds up only its own deliveries; one found busy goes
back to the outbox for a moment, behind the others.

Every attempt re-checks the URL against the SSRF guard, and connects only to
addresses the guard allows (the resolver below), so a host that resolves to a
public address at submission and a private one later (DNS rebinding) is refused.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway import netguard
from gateway.config.schema import WebhooksConfig
from gateway.metrics import WEBHOOKS
from gateway.store import Delivery, Store, StoreDown
from gateway.waiting import set_or_after
from gateway.webhooks.signing import event, sign

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("gateway.webhooks")

_BATCH = 16
_IDLE_S = 0.5          # between looks at the outbox when it is empty
_MOST_IN_FLIGHT = 64   # attempts at once in one process
_PER_DESTINATION = 4   # attempts at once to one receiver
_BUSY_RETRY_S = 1.0    # a delivery whose receiver is busy goes back this long
_MAX_ERROR_CHARS = 300


def deliveries_for(hooks: WebhooksConfig, type: str, video_id: str, callback_url: str | None,
                   more: dict[str, Any] | None = None) -> list[Delivery]:
    """One delivery per endpoint subscribed to `type`, plus the job's own callback_url;
    `more`: the event's data beside the video's id."""
    if not hooks.secret:
        return []
    urls = [e.url for e in hooks.endpoints if type in e.events]
    if callback_url:
        urls.append(callback_url)
    event_id, body = event(type, video_id, more=more)
    now = time.time()
    return [Delivery(f"{event_id}.{i}", event_id, url, body, video_id, next_at=now)
            for i, url in enumerate(dict.fromkeys(urls))]


async def check_url(hooks: WebhooksConfig, url: str) -> None:
    """BlockedURL unless `url` may receive webhooks under this config."""
    await netguard.check_url(url, allow_private=hooks.allow_private_urls, allow=hooks.allow_hosts)


class Sender:
    """Takes due deliveries from the outbox and sends them, forever."""

    def __init__(self, store: Store, hooks: Callable[[], WebhooksConfig]) -> None:
        self._store = store
        self._hooks = hooks
        self._session: aiohttp.ClientSession | None = None
        self.wake = asyncio.Event()      # set when this process queued an event, or an attempt ended: look now
        self._running: set[asyncio.Task] = set()
        self._busy: Counter[str] = Counter()     # attempts in flight per destination

    async def run(self) -> None:
        try:
            while True:
                room = _MOST_IN_FLIGHT - len(self._running)
                due: list[Delivery] = []
                if room > 0:
                    try:
                        due = await self._store.jobs.outbox_claim(time.time(), min(_BATCH, room), self._lease_s())
                    except StoreDown as e:
                        log.warning("webhook outbox unreachable: %s", e)
                for d in due:
                    await self._start(d)
                if len(due) == min(_BATCH, room) and due:
                    continue             # there may be more due right now
                self.wake.clear()
                await set_or_after(self.wake, _IDLE_S)
        finally:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _start(self, d: Delivery) -> None:
        destination = _destination(d.url)
        if self._busy[destination] >= _PER_DESTINATION:
            d.next_at = time.time() + _BUSY_RETRY_S     # back in line, behind the others
            await self._save(d)
            return
        self._busy[destination] += 1
        task = asyncio.create_task(self._attempt(d))
        self._running.add(task)
        task.add_done_callback(lambda t: self._ended(t, destination))

    def _ended(self, task: asyncio.Task, destination: str) -> None:
        self._running.discard(task)
        self._busy[destination] -= 1
        if self._busy[destination] <= 0:
            del self._busy[destination]
        self.wake.set()

    def _lease_s(self) -> float:
        return self._hooks().timeout_s * 2 + 5

    async def _attempt(self, d: Delivery) -> None:
        hooks = self._hooks()
        started = time.time()
        status, error = await self._post(hooks, d)
        d.attempts += 1
        d.history.append({"at": int(started), "status": status, "error": error})
        if status is not None and 200 <= status < 300:
            d.status = "delivered"
            WEBHOOKS.inc(("delivered",))
        elif d.attempts >= hooks.max_attempts or not hooks.secret:
            d.status = "failed"
            WEBHOOKS.inc(("failed",))
            log.warning("webhook %s to %s given up after %d attempts: %s", d.event_id, d.url, d.attempts,
                        error or status)
        else:
            WEBHOOKS.inc(("retried",))
            d.next_at = time.time() + min(hooks.backoff_s * 2 ** (d.attempts - 1), hooks.max_backoff_s)
        await self._save(d)

    async def _save(self, d: Delivery) -> None:
        try:
            await self._store.jobs.outbox_save(d)
        except StoreDown as e:   # the lease lapses and the attempt is made again: at least once
            log.warning("webhook %s: could not record the attempt: %s", d.event_id, e)

    async def _post(self, hooks: WebhooksConfig, d: Delivery) -> tuple[int | None, str | None]:
        if not hooks.secret:
            return None, "webhooks.secret is no longer configured"
        try:
            await check_url(hooks, d.url)
        except netguard.BlockedURL as e:
            return None, str(e)[:_MAX_ERROR_CHARS]
        import aiohttp  # here, not at the top: a process that sends no webhook never loads it
        headers = {"content-type": "application/json", "user-agent": "gateway-webhooks",
                   **sign(hooks.secret, d.event_id, int(time.time()), d.body)}
        try:
            async with self._client().post(d.url, data=d.body, headers=headers, allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=hooks.timeout_s)) as resp:
                await resp.content.read(64 * 1024)
                return resp.status, None if resp.status < 300 else f"answered {resp.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            return None, (f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)[:_MAX_ERROR_CHARS]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            from providers.guarded_resolver import GuardedResolver
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._hooks), limit=64)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


def _destination(url: str) -> str:
    """Who receives it: scheme, host and port (a receiver's paths share its capacity)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"
    except ValueError:
        return url
