"""Accepting a video job: SSRF checks on the URLs the client gave, limits and
budget, then the route: each target in turn is asked to take the job (a
hosted provider's submit call, a local queue with room) until one does. The
job is stored and queued only once a provider has accepted it, and what the
client is charged is the accepting target's price for the job's seconds
(refunded if the job fails)."""
from __future__ import annotations

import asyncio
import logging

from gateway import netguard, router
from gateway.auth import Key
from gateway.errors import ApiError, bad_request
from gateway.exchange import Exchange
from gateway.limits import TargetFull, Ticket
from gateway.metrics import VIDEO_JOBS
from gateway.routes import ServedModel, Target
from gateway.runtime import Runtime
from gateway.store import StoreDown
from gateway.video.jobs import Job
from gateway.video.protocol import MAX_REFERENCE_BYTES, media_type_of
from gateway.video.service import Videos
from gateway.webhooks.delivery import check_url
from providers.base import Call, Provider, Usage
from providers.errors import ProviderError
from providers.http import read_capped
from providers.options import ProviderLimits

log = logging.getLogger("gateway.video")


def video_support(served: ServedModel) -> tuple[frozenset[str], frozenset[str], bool]:
    """Every size and duration some target of the model makes natively, and whether
    some target fits any other (`video_fit: exact`)."""
    sizes: set[str] = set()
    seconds: set[str] = set()
    for t in served.targets:
        s, d = t.provider.video_support()
        sizes |= s
        seconds |= d
    return frozenset(sizes), frozenset(seconds), any(t.provider.fits_any_size() for t in served.targets)


def can_serve(provider: Provider, op: str, size: str, seconds: str, *, as_is: bool = False) -> bool:
    """Whether `provider` makes this video: fitted to the size and length if need be, or (`as_is`) natively."""
    if op not in provider.video_ops:
        return False
    width, _, height = size.partition("x")
    plan = provider.video_plan(op, int(width), int(height), int(seconds))
    return plan is not None and not (as_is and plan.fitted)


async def check_urls(rt: Runtime, callback_url: str | None, reference_url: str | None) -> None:
    """400 at submission for a URL the gateway may not call (SSRF guard), or a
    callback that could not be signed."""
    hooks = rt.config.webhooks
    if callback_url is not None:
        if not hooks.secret:
            raise bad_request("callback_url needs webhooks.secret in the gateway's config, to sign the "
                              "events it sends; ask the operator to set one.", param="callback_url")
        try:
            await check_url(hooks, callback_url)
        except netguard.BlockedURL as e:
            raise bad_request(f"callback_url is refused: {e}", param="callback_url",
                              code="invalid_url") from None
    if reference_url is not None:
        try:
            await check_url(hooks, reference_url)
        except netguard.BlockedURL as e:
            raise bad_request(f"input_reference is refused: {e}", param="input_reference",
                              code="invalid_url") from None


async def fetch_reference(rt: Runtime, url: str) -> tuple[bytes, str]:
    """Download an input_reference URL (already checked), connecting only where the guard allows."""
    def refused(why: str) -> ApiError:
        return bad_request(f"input_reference could not be fetched: {why}", param="input_reference")
    import aiohttp  # here, not at the top: the request path never loads it (~10 MiB resident)

    from providers.guarded_resolver import GuardedResolver
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(lambda: rt.config.webhooks))
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=15)) as resp:
                if resp.status != 200:
                    raise refused(f"it answered {resp.status}")
                if resp.content_length is not None and resp.content_length > MAX_REFERENCE_BYTES:
                    raise refused("it is larger than 10 MB")
                data = await read_capped(resp, MAX_REFERENCE_BYTES)
                if data is None:
                    raise refused("it is larger than 10 MB")
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        raise refused(type(e).__name__) from None
    media_type = media_type_of(data)
    if media_type is None:
        raise refused("it is not a PNG, JPEG or WEBP image")
    return data, media_type


async def accept(x: Exchange, key: Key, videos: Videos, served: ServedModel, strategy: str | None, job: Job,
                 reference: bytes | None) -> None:
    """Route the job to the first target that takes it, store it and queue it.
    What it costs is charged on acceptance, through the exchange's end."""
    rt = x.rt
    op_seconds = str(int(job.seconds) - job.source_seconds) if job.op == "extend" else job.seconds
    # The targets that make the size and length as they are, else those that fit them (providers/video_fit.py)
    eligible = [t for t in served.targets if can_serve(t.provider, job.op, job.size, op_seconds, as_is=True)] \
        or [t for t in served.targets if can_serve(t.provider, job.op, job.size, op_seconds)]
    source_provider = job.provider     # remix/edit/extend: where the source was made
    if job.op in ("edit", "extend"):   # these work on the source itself: only its provider can
        eligible = [t for t in eligible if t.provider.name == source_provider]
    if not eligible:
        raise bad_request(f"No backend of model '{served.name}' can {_VERBS[job.op]} at size {job.size} and "
                          f"{op_seconds} seconds.", param="model", code="unsupported_operation")
    allowed = {id(t) for t in eligible}
    x.admitted(await rt.limiter.admit_video(key, served, int(job.seconds)), _QueueGate(rt, videos))
    call = Call("video", b"", {}, served.name, request_id=x.req.id.decode(), video=job.spec(reference))
    outcome = x.routed(await router.send(served, call, strategy, x.gate, only=lambda t: id(t) in allowed))
    x.let_go_of_target()
    target = outcome.target
    if target.provider.name != source_provider:
        job.source_state = None     # a remix made elsewhere: this target makes it from the prompt
    job.provider, job.target_model = target.provider.name, target.model
    job.state = outcome.reply.extra.get("state") or {}
    plan = outcome.reply.extra.get("fit")
    job.fit = plan.record() if plan is not None and plan.fitted else None
    job.cost_nano = x.priced(None, seconds=int(job.seconds))    # charged at the end; kept for a refund
    ticket = x.ticket
    if ticket is not None and ticket.admission is not None and ticket.admission.hold is not None:
        job.budget_hold = ticket.admission.hold.key
    try:
        if reference is not None:
            await asyncio.to_thread(videos.assets.put, job.id, "reference", reference)
        await rt.store.jobs.create(job.record(), target.provider.name)
    except (StoreDown, OSError) as e:
        log.error("video %s accepted by %s but not stored: %s", job.id, target.provider.name, e)
        await _abandon(target, job)
        x.provider, x.cost = "", 0          # nothing was served, nothing is charged
        raise ApiError(503, "The gateway could not store the video job; try again shortly.",
                       type="server_error", code="jobs_unavailable", headers=[(b"retry-after", b"1")]) from None
    videos.queued(target.provider.name)
    VIDEO_JOBS.inc((served.name, target.provider.name, "accepted"))


_VERBS = {"create": "generate videos", "remix": "remix videos", "edit": "edit videos", "extend": "extend videos"}


async def _abandon(target: Target, job: Job) -> None:
    try:
        await target.provider.video_cancel(job.spec(), job.state)
    except (ProviderError, OSError):
        pass


class _QueueGate:
    """Per attempt: a provider whose queue is full (its `max_queue`), or whose
    jobs run in workers of which none is alive, is skipped like one that
    answered 429, and so is one at its own configured limits."""

    def __init__(self, rt: Runtime, videos: Videos) -> None:
        self._rt = rt
        self._videos = videos

    async def admit(self, provider: str, limits: ProviderLimits | None) -> Ticket | None:
        p = self._rt.providers[provider]
        store = self._rt.store
        if not p.runs_in(embedded=not self._rt.config.state.redis_url):
            try:
                live = await store.workers.live(provider)
            except StoreDown:
                live = [{}]      # can't tell: let the queue hold it
            if not live:
                raise TargetFull(provider, 5.0, "has no live worker (start one with `gateway worker`)")
        most = getattr(p.options, "max_queue", None)
        if most is not None:
            try:
                depth = await store.jobs.queue_depth(provider)
            except StoreDown:
                depth = 0
            if depth >= most:
                raise TargetFull(provider, 5.0, f"has a full queue ({depth} jobs)")
        if limits is None:
            return None
        return await self._rt.limiter.admit_target(provider, limits, {}, b"")

    async def release(self, ticket: Ticket | None, usage: Usage | None) -> None:
        if ticket is not None:
            await self._rt.limiter.settle(ticket, None, usage, 0)
