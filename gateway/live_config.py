"""The running config's versions, shared by every replica through the store.

The YAML file is the seed. At start, a process compares the file with the
store's newest version: a file new to the store (first start, or edited since
it was last applied) becomes the newest version; otherwise the newest version
wins, so edits made through the admin API outlive restarts, except one that
left the admin API off: the file's admin key then comes back. An edit is
checked, stored as a new version only if nobody else's came first, applied
here at once, and announced: every replica applies it within a second (Redis
pub/sub, with a look every two seconds behind it).

A `gateway worker` follows the same versions without writing its file into
the store (`start(seed=False)`): it runs the newest stored version, or its
file until a gateway stores one (gateway/video/worker.py).

Applying a version builds a new Runtime and swaps it in whole. A request
keeps the Runtime it started with to the end (a stream finishes on the route
it began on); the old one's upstream connections close once its last request
is done.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway import config as config_loader
from gateway.config import Checked, ConfigError
from gateway.config.edits import summary
from gateway.runtime import Runtime
from gateway.services import Services
from gateway.store import ConfigVersion, StoreDown

log = logging.getLogger("gateway.config")

_LOOK_EVERY_S = 2.0
_DRAIN_MOST_S = 900.0   # an old version's connections close after this even if a request still holds it


class EditConflict(Exception):
    """Another edit was stored first: read the config again and retry."""


class LiveConfig:
    """`current()` is the version serving now; `swap(new)` puts another in its place."""

    def __init__(self, services: Services, current: Callable[[], Runtime], swap: Callable[[Runtime], None]) -> None:
        self.services = services
        self.current = current
        self._put_in_place = swap
        self._tasks: list[asyncio.Task] = []
        self._retiring: set[asyncio.Task] = set()
        self._skipped: set[int] = set()

    # -- start -------------------------------------------------------------------

    async def start(self, seed: bool = True) -> None:
        """Catch up with the store's versions, then follow them. `seed=False`: never store
        the file as a version (a worker's copy of it may be older than the gateways')."""
        try:
            if seed:
                await self._seed(self.current())
            elif (latest := await self.services.store.configs.latest()) is not None \
                    and latest.version != self.current().version:
                self._apply(latest)
        except StoreDown as e:
            log.warning("config versions unreachable at start (%s): running the file's config", e)
        self._tasks.append(asyncio.create_task(self._follow(), name="config-follow"))

    async def _seed(self, rt: Runtime) -> None:
        """The file becomes the newest version when the store has not seen it; else the newest runs."""
        store = self.services.store
        for _ in range(3):    # a replica starting beside us may store the same file first
            latest = await store.configs.latest()
            if latest is None or latest.file_hash != rt.file_hash:
                old = latest.config() if latest is not None else {}
                made = await store.configs.put(ConfigVersion(
                    0, time.time(), "file", "from the config file: " + summary(old, rt.document),
                    rt.file_hash, orjson.dumps(rt.document)), latest.version if latest else 0)
                if made is None:
                    continue
                self._swap(self.check(rt.document), made)     # the same config, numbered now
                log.info("config version %d: from the config file", made)
            elif latest.version != rt.version:
                self._apply(latest)
                await self._admin_key_from_file(rt)
            return

    async def _admin_key_from_file(self, file_rt: Runtime) -> None:
        """A stored version that left the admin API off gives way to the file's admin key,
        so the file given at start can always take control back."""
        running = self.current()
        if running.config.auth.admin_key or not file_rt.config.auth.admin_key:
            return
        auth = {**(running.document.get("auth") or {}), "admin_key": file_rt.document["auth"]["admin_key"]}
        document = {**running.document, "auth": auth}
        said = "auth.admin_key taken back from the config file (the stored version had the admin API off)"
        made = await self.services.store.configs.put(ConfigVersion(
            0, time.time(), "file", said, running.file_hash, orjson.dumps(document)), running.version)
        if made is None:
            return     # another replica starting beside us came first; it is followed like any edit
        try:
            self._swap(self.check(document), made)
        except ConfigError as e:
            log.error("config version %d does not check here: %s", made, "; ".join(e.errors[:5]))
            return
        log.warning("config version %d: %s", made, said)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- edits -------------------------------------------------------------------

    async def newest(self) -> tuple[int, dict[str, Any], str]:
        """(version, document, file hash) of the newest version."""
        latest = await self._latest()
        if latest is None:
            rt = self.current()
            return rt.version, rt.document, rt.file_hash
        return latest.version, latest.config(), latest.file_hash

    def check(self, document: dict[str, Any]) -> Checked:
        """ConfigError with every problem, or the checked config."""
        return config_loader.check_document(document)

    async def edit(self, document: dict[str, Any], author: str, base: int, base_document: dict[str, Any],
                   file_hash: str, note: str | None = None) -> tuple[int, str]:
        """Check, store as the version after `base`, apply here; (version, summary)."""
        checked = self.check(document)
        said = note or summary(base_document, document)
        made = await self.services.store.configs.put(
            ConfigVersion(0, time.time(), author, said, file_hash, orjson.dumps(document)), base)
        if made is None:
            raise EditConflict
        self._swap(checked, made)
        log.info("config version %d by %s: %s", made, author, said)
        return made, said

    # -- following other replicas --------------------------------------------------

    async def _follow(self) -> None:
        events = asyncio.create_task(self._on_events())
        try:
            while True:
                await asyncio.sleep(_LOOK_EVERY_S)
                await self._catch_up()
        finally:
            events.cancel()
            await asyncio.gather(events, return_exceptions=True)   # its subscription closed before the store

    async def _on_events(self) -> None:
        while True:
            try:
                async for version in self.services.store.configs.events():
                    if version > self.current().version:
                        await self._catch_up()
            except StoreDown:
                # Whatever was announced while the subscription was down is read at once.
                await asyncio.sleep(0.2)
                await self._catch_up()

    async def _latest(self) -> ConfigVersion | None:
        """The store's newest version. A store behind the version running here lost its
        data (a Redis restarted empty): it is reseeded from this version first, under
        the same number, so edits based on it do not conflict and replicas agree."""
        configs = self.services.store.configs
        latest = await configs.latest()
        rt = self.current()
        if rt.version > 0 and (latest is None or latest.version < rt.version):
            said = f"reseeded from version {rt.version}: the store had lost its versions"
            if await configs.seed(ConfigVersion(rt.version, time.time(), "gateway", said, rt.file_hash,
                                                orjson.dumps(rt.document))):
                log.warning("config version %d: %s", rt.version, said)
            latest = await configs.latest()
        return latest

    async def _catch_up(self) -> None:
        try:
            latest = await self._latest()
        except StoreDown:
            return
        if latest is not None and latest.version > self.current().version and latest.version not in self._skipped:
            self._apply(latest)

    def _apply(self, version: ConfigVersion) -> None:
        try:
            checked = self.check(version.config())
        except ConfigError as e:
            # Checked where it was made; here it can only differ by this process's environment.
            self._skipped.add(version.version)
            log.error("config version %d does not check here, kept version %d: %s", version.version,
                      self.current().version, "; ".join(e.errors[:5]))
            return
        self._swap(checked, version.version)
        log.info("config version %d applied (%s: %s)", version.version, version.author, version.summary)

    def _swap(self, checked: Checked, version: int) -> None:
        old = self.current()
        new = Runtime(checked, self.services, version, old.file_hash)
        self._put_in_place(new)
        if self.services.videos is not None:
            self.services.videos.refresh()
        task = asyncio.create_task(_retire(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)


async def _retire(old: Runtime) -> None:
    """Close the old version's upstream connections once no request holds it."""
    give_up = time.monotonic() + _DRAIN_MOST_S
    while old.active and time.monotonic() < give_up:
        await asyncio.sleep(1.0)
    await old.close()
