"""Holding a claimed job while its work runs: the claim renewed every third of its
lease, the work stopped when the claim is lost (the job gone, or taken over by
another process after a stall). Video images and batches run under it."""
from __future__ import annotations

import asyncio
import logging

from gateway.store import Claim, Jobs, StoreDown

log = logging.getLogger("gateway")


async def renewing(jobs: Jobs, claim: Claim, lease_s: float, work: asyncio.Task, what: str) -> bool:
    """Wait for `work`, renewing `claim` meanwhile; False once the claim was lost (the work is
    cancelled then, and awaited). A store that does not answer is asked again at the next renewal:
    the lease has two more thirds to run."""
    while not work.done():
        await asyncio.wait([work], timeout=lease_s / 3)
        if work.done():
            break
        try:
            kept = await jobs.renew(claim, lease_s)
        except StoreDown as e:
            log.warning("%s: heartbeat failed (%s); retrying", what, e)
            continue
        if not kept:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            return False
    return True
