"""`gateway worker`: runs the jobs of local providers (`type: diffusers` video
jobs, and `diffusers_image` requests handed over by gateways) next to the GPUs.
It loads each pipeline, then takes jobs from its provider's queue in the
shared store (with Redis: a Redis Streams consumer group, so any number of
workers on any number of machines share the work), heartbeats while it runs them, and writes the files to the shared
video assets. A worker killed mid-job stops heartbeating; once its lease
lapses another worker claims the job and runs it again.

It follows the config's versions as the gateways do (gateway/live_config.py,
without ever storing its own file as one). Each served provider runs its
jobs on a config version of its own, moved on as versions apply:
- options that leave the pipeline as it is (steps, sizes, limits...) apply
  to the next job at once; a run in progress ends on the version it began;
- a changed pipeline (providers/diffusers PIPELINE_FIELDS) is reloaded once
  the provider's runs in progress end, before it takes another job;
- a provider removed or disabled drains: no new jobs, its runs in progress
  finish; a worker left with nothing to serve exits 0;
- a provider added (one named with `--provider`, or any local one when none
  was named) is loaded and served.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Iterable

from gateway import metrics
from gateway.config import Checked
from gateway.live_config import LiveConfig
from gateway.runtime import Runtime
from gateway.services import Services
from gateway.store import open_store
from gateway.video.runner import Runner
from gateway.video.service import Videos
from providers.base import Provider

log = logging.getLogger("gateway.worker")


async def run(checked: Checked, names: list[str] | None) -> int:
    """`gateway worker`: serve until SIGTERM/SIGINT, or until the config leaves nothing to serve."""
    worker = Worker(checked, names)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop, "stopping: runs in progress are left to the next worker "
                                                  "once their lease lapses")
    return await worker.run()


def weights_of(provider: Provider) -> object:
    """What loading `provider` builds: a version where this changes loads the weights
    again. A provider that says (diffusers: `weights_key`, from its PIPELINE_FIELDS)
    is taken at its word; for any other local provider every option counts."""
    key = getattr(provider, "weights_key", None)
    return key() if callable(key) else provider.options.model_dump_json()


class _Served:
    """A provider this worker serves, on the config version its next job runs on. The
    version is held open (`active`) while it is in use here, as a request holds one."""

    def __init__(self, rt: Runtime) -> None:
        rt.active += 1
        self.rt = rt
        self.runner: Runner | None = None

    def provider(self, name: str) -> Provider:
        return self.rt.providers[name]

    def use(self, rt: Runtime) -> None:
        rt.active += 1
        self.rt.active -= 1
        self.rt = rt

    def let_go(self) -> None:
        self.rt.active -= 1


class Worker:
    def __init__(self, checked: Checked, names: Iterable[str] | None) -> None:
        self.services = Services(open_store(checked.config.state))
        self.latest = Runtime(checked, self.services)     # the newest config version applied here
        self.names = set(names) if names else None        # None: every local provider
        self.served: dict[str, _Served] = {}
        self.videos: Videos | None = None
        self._settling: dict[str, asyncio.Task] = {}      # a provider being loaded, reloaded or drained
        self._failed: dict[str, object] = {}              # provider -> the weights that would not load
        self._loading = asyncio.Lock()                    # one pipeline loads at a time (GPU memory)
        self._following = False
        self._done = asyncio.Event()
        self._exit = 0

    def stop(self, why: str, code: int = 0) -> None:
        if not self._done.is_set():
            log.info("%s", why)
            self._exit = code
            self._done.set()

    def wanted(self, rt: Runtime) -> dict[str, Provider]:
        """The providers of `rt` this worker is for."""
        return {p.name: p for p in rt.providers.values()
                if p.local and (self.names is None or p.name in self.names)}

    async def run(self) -> int:
        store = self.services.store
        await store.start()
        live = self.services.live = LiveConfig(self.services, lambda: self.latest, self._applied)
        videos: Videos | None = None
        snapshots = None
        try:
            await live.start(seed=False)
            wanted = self.wanted(self.latest)
            if not wanted:
                log.error("config version %d has no local providers (type: diffusers, diffusers_image) %s",
                          self.latest.version,
                          f"named {', '.join(sorted(self.names))} (or they are disabled)" if self.names else
                          "to serve")
                return 2
            if missing := sorted((self.names or set()) - set(wanted)):
                log.warning("not local providers of config version %d (or disabled): %s; served once a "
                            "version adds them", self.latest.version, ", ".join(missing))
            videos = self.services.videos = self.videos = Videos(store, lambda: self.latest)
            # Its counts (jobs finished, generation seconds) join the gateway's /metrics where the
            # data_dir is shared (one machine, or a common volume), as a serve worker process's do.
            snapshots = metrics.start(self.latest.config.state.data_dir)
            info = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": int(time.time())}
            await videos.start([], worker=info)
            # The weights first: a provider is heartbeaten only once it can run jobs.
            await asyncio.gather(*(self._settle(name) for name in wanted))
            self._following = True
            if not self.served:
                if self.wanted(self.latest):
                    log.error("exiting: no provider's pipeline loaded")
                    return 1
                self._nothing_left()
                return self._exit
            log.info("worker %s serving %s (config version %d)", videos.consumer, ", ".join(sorted(self.served)),
                     self.latest.version)
            self._applied(self.latest)      # a version applied while the weights loaded
            await self._done.wait()
            return self._exit
        finally:
            for task in self._settling.values():
                task.cancel()
            await asyncio.gather(*self._settling.values(), return_exceptions=True)
            await live.close()
            if snapshots is not None:
                await snapshots.stop()
            if videos is not None:
                await videos.close()
            for served in self.served.values():
                served.let_go()
            await self.latest.close()
            await store.close()

    # -- following the config ----------------------------------------------------

    def _applied(self, rt: Runtime) -> None:
        """A new config version (LiveConfig's swap): options apply to the next job at once;
        loading, reloading and draining go on in a task per provider."""
        self.latest = rt
        if not self._following:
            return      # still starting: the providers are set up from the newest version
        wanted = self.wanted(rt)
        for name in sorted({*self.served, *wanted}):
            if name in self._settling:
                continue    # it reads the newest version when it gets there
            served, provider = self.served.get(name), wanted.get(name)
            if served is not None and provider is not None and weights_of(provider) == weights_of(
                    served.provider(name)):
                served.use(rt)  # the next job runs on this version; the weights stay
            elif provider is None or not self._failed_before(name, provider):
                self._settling[name] = asyncio.create_task(self._follow(name), name=f"worker-{name}")
        if self.videos is not None:
            self.videos.beat_now()

    async def _follow(self, name: str) -> None:
        try:
            await self._settle(name)
        except Exception:
            log.exception("provider '%s' could not follow the config", name)
        finally:
            # With no await since _settle's last look at the newest version: no version slips by.
            del self._settling[name]
        if not self.served and not self._settling:
            self._nothing_left()

    def _nothing_left(self) -> None:
        self.stop(f"exiting: config version {self.latest.version} leaves this worker nothing to serve "
                  "(its providers were removed or disabled)")

    async def _settle(self, name: str) -> None:
        """Bring `name` to the newest version: load, reload or drain it, as often as it takes."""
        while True:
            rt = self.latest
            provider, served = self.wanted(rt).get(name), self.served.get(name)
            if provider is None:
                if served is not None:
                    await self._drain(name, served, rt.version)
            elif self._failed_before(name, provider):
                pass
            elif served is None:
                await self._add(name, provider, rt)
            elif weights_of(provider) != weights_of(served.provider(name)):
                await self._reload(name, served, provider, rt)
            else:
                served.use(rt)
            if self.latest is rt:
                if self.videos is not None:
                    self.videos.beat_now()
                return

    def _failed_before(self, name: str, provider: Provider) -> bool:
        """Its weights would not load: tried again once a version changes them. Meanwhile
        a provider served here stays on the version it runs; one not yet served waits."""
        return self._failed.get(name) == weights_of(provider)

    async def _add(self, name: str, provider: Provider, rt: Runtime) -> None:
        if self._following:
            log.info("provider '%s' added in config version %d: loading it", name, rt.version)
        if not await self._load(provider):
            self._failed[name] = weights_of(provider)
            return
        self._failed.pop(name, None)
        served = self.served[name] = _Served(rt)
        assert self.videos is not None
        served.runner = self.videos.serve(name, lambda: served.rt)

    async def _reload(self, name: str, served: _Served, provider: Provider, rt: Runtime) -> None:
        runner = served.runner
        assert runner is not None
        log.info("provider '%s': config version %d changes its pipeline; reloading once its runs in progress end",
                 name, rt.version)
        runner.pause()
        try:
            await runner.quiet()
            old = served.provider(name)
            await self._release(name, old)
            if await self._load(provider):
                self._failed.pop(name, None)
                served.use(rt)
            else:
                self._failed[name] = weights_of(provider)
                log.error("provider '%s' keeps config version %d's pipeline", name, served.rt.version)
                await self._load(old)
        finally:
            runner.resume()

    async def _drain(self, name: str, served: _Served, version: int) -> None:
        log.info("provider '%s' is not in config version %d (removed or disabled): draining: no new jobs, "
                 "%d in progress finishing", name, version, served.runner.running if served.runner else 0)
        assert self.videos is not None
        await self.videos.stop_serving(name)
        del self.served[name]
        await self._release(name, served.provider(name))
        served.let_go()
        log.info("provider '%s' drained", name)

    async def _load(self, provider: Provider) -> bool:
        async with self._loading:
            started = time.perf_counter()
            try:
                await asyncio.to_thread(provider.prepare)
            except Exception:   # torch's errors have no common base: each is this pipeline's failure
                log.exception("provider '%s': its pipeline did not load", provider.name)
                return False
            log.info("provider '%s' ready in %.1fs", provider.name, time.perf_counter() - started)
            return True

    async def _release(self, name: str, provider: Provider) -> None:
        """Free `provider`'s weights unless another provider served here shares them."""
        key = weights_of(provider)
        release = getattr(provider, "release", None)
        async with self._loading:     # not while another provider loads the same weights
            if callable(release) and not any(weights_of(s.provider(n)) == key
                                             for n, s in self.served.items() if n != name):
                await asyncio.to_thread(release)
