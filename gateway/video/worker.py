"""`gateway worker`: runs the jobs of local video providers (`type:
diffusers`) next to the GPUs. It loads each pipeline once, then takes jobs
from its provider's queue in the shared store (with Redis: a Redis Streams
consumer group, so any number of workers on any number of machines share
the work), heartbeats while it runs them, and writes the files to the shared
`videos.assets_dir`. A worker killed mid-job stops heartbeating; once its
lease lapses another worker claims the job and runs it again.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time

from gateway import metrics
from gateway.config import Checked
from gateway.runtime import Runtime
from gateway.services import Services
from gateway.store import open_store
from gateway.video.service import Videos

log = logging.getLogger("gateway.worker")


async def run(checked: Checked, names: list[str] | None) -> int:
    services = Services(open_store(checked.config.state))
    rt = Runtime(checked, services)
    local = [p for p in rt.providers.values() if p.local and (not names or p.name in names)]
    unknown = sorted(set(names or ()) - {p.name for p in local})
    if unknown:
        log.error("not local video providers of this config (or disabled): %s", ", ".join(unknown))
        return 2
    if not local:
        log.error("this config has no local video providers (type: diffusers) to serve")
        return 2
    await services.store.start()
    videos = services.videos = Videos(services.store, lambda: rt)
    # Its counts (jobs finished, generation seconds) join the gateway's /metrics where the
    # data_dir is shared (one machine, or a common volume), as a serve worker process's do.
    snapshots = metrics.start(rt.config.state.data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for provider in local:      # the weights first: a worker heartbeats only once it can run jobs
            started = time.perf_counter()
            await asyncio.to_thread(provider.prepare)
            log.info("provider '%s' ready in %.1fs", provider.name, time.perf_counter() - started)
        info = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": int(time.time())}
        await videos.start([p.name for p in local], worker=info)
        log.info("worker %s serving %s", videos.consumer, ", ".join(p.name for p in local))
        await stop.wait()
        log.info("stopping: runs in progress are left to the next worker once their lease lapses")
    finally:
        await snapshots.stop()
        await videos.close()
        await rt.close()
        await services.store.close()
    return 0
