"""Rate limits and budgets on the request path.

Before routing, one `admit` call to the store checks and charges every limit
of the request at once (the key's rpm, tpm and concurrency, the model's rpm
and tpm, the key's budget): tokens are charged an estimate (body length / 4,
plus max_tokens x n) and money a hold at the dearest target's price. After the
answer, `settle` corrects the tokens to the real usage, frees the slot, turns
the hold into spend and writes the ledger row. `limits_in_use`, for reports,
reads what each key has used of its limits this moment, charging nothing.
"""
from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.auth import Key
from gateway.config.schema import Budget, Price, ProviderLimits, StateConfig
from gateway.config.schema import Limits as KeyLimits
from gateway.errors import ApiError
from gateway.metrics import RATE_LIMITED, STORE_ERRORS
from gateway.routes import ServedModel
from gateway.spend import NANO, cost_nano, period, today, usd
from gateway.store import Admission, Hold, Lease, LedgerEntry, Settlement, Store, StoreDown, Verdict, Window
from providers.base import Usage

log = logging.getLogger("gateway.limits")

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Ticket:
    """One admitted request: what it was charged, to settle afterwards."""
    key: str                                   # the key's id: ledger rows are by id
    model: str
    estimate: int = 0                          # tokens charged up front
    admission: Admission | None = None
    verdict: Verdict | None = None
    headers: Headers = field(default_factory=list)


class TargetFull(Exception):
    """A provider is at its own limit: the router skips it like a 429."""

    def __init__(self, provider: str, retry_after_s: float, why: str = "is at its configured limit") -> None:
        super().__init__(f"provider '{provider}' {why}")
        self.retry_after_s = retry_after_s


def estimate_tokens(data: dict[str, Any], body: bytes) -> int:
    """Prompt ~ 4 bytes a token (no tokenizer on the hot path), plus the most the
    answer may use."""
    most = data.get("max_completion_tokens") or data.get("max_tokens") or 0
    return len(body) // 4 + most * (data.get("n") or 1)


class Limiter:
    def __init__(self, store: Store, state: StateConfig) -> None:
        self._limits = store.limits   # looked up once: admit and settle are on every request's path
        self._open_on_error = state.on_redis_error == "open"
        self._lease_ttl_s = state.lease_ttl_s
        self._down = False
        self.store_errors = 0

    async def admit(self, key: Key, served: ServedModel, data: dict[str, Any], body: bytes) -> Ticket:
        ticket = Ticket(key.id, served.name)
        return await self._admit(key, self._admission(key, served, data, body, ticket), ticket)

    async def admit_video(self, key: Key, served: ServedModel, seconds: int) -> Ticket:
        """A video submission: the key's rpm, videos_per_hour and concurrency, the
        model's rpm, and a budget hold of the dearest target's price for `seconds`."""
        ticket = Ticket(key.id, served.name)
        limits = key.limits
        windows = _windows(f"key:{key.id}", limits.rpm, None, 0)
        if limits.videos_per_hour is not None:
            windows.append(Window("videos", f"vph:key:{key.id}", limits.videos_per_hour, 3600, 1))
        if served.limits is not None:
            windows += _windows(f"model:{served.name}", served.limits.rpm, None, 0)
        hold = None
        if key.budget is not None:
            hold = self._hold(key, cost_nano(served.hold_price, None, seconds=seconds))
        lease = self._lease(f"key:{key.id}", limits.concurrent)
        admission = Admission(windows, lease, hold, time.time()) if windows or lease or hold else None
        return await self._admit(key, admission, ticket)

    async def refund(self, key: str, model: str, provider: str, budget_hold: str | None, cost: int) -> None:
        """Give back what a video that failed or was cancelled was charged."""
        if cost <= 0:
            return
        s = Settlement(entry=LedgerEntry(today(), key, model, provider, 0, cost_nano=-cost))
        if budget_hold is not None:
            s.hold, s.spent_nano = Hold(budget_hold, 0, 0), -cost
        try:
            await self._limits.settle(s)
        except StoreDown as e:
            self._store_failed(e)

    async def _admit(self, key: Key, admission: Admission | None, ticket: Ticket) -> Ticket:
        if admission is None:
            return ticket                      # nothing to check: no store trip at all
        verdict = await self._decide(admission, None)
        if verdict is None:
            return ticket
        ticket.admission, ticket.verdict = admission, verdict
        ticket.headers = _headers(admission.windows, verdict)
        if not verdict.allowed:
            RATE_LIMITED.inc((verdict.refused_by or "limit",))
            raise _refusal(key, admission, verdict, ticket.headers)
        return ticket

    async def admit_target(self, provider: str, limits: ProviderLimits, data: dict[str, Any],
                           body: bytes) -> Ticket:
        """One attempt's charge against its provider's own limits (TargetFull if over)."""
        ticket = Ticket("", "", estimate_tokens(data, body) if limits.tpm is not None else 0)
        scope = f"provider:{provider}"
        admission = Admission(_windows(scope, limits.rpm, limits.tpm, ticket.estimate),
                              self._lease(scope, limits.concurrent), None, time.time())
        verdict = await self._decide(admission, TargetFull(provider, 1.0))
        if verdict is None:
            return ticket
        if not verdict.allowed:
            raise TargetFull(provider, verdict.retry_after_s)
        ticket.admission, ticket.verdict = admission, verdict
        return ticket

    def _admission(self, key: Key, served: ServedModel, data: dict[str, Any], body: bytes,
                   ticket: Ticket) -> Admission | None:
        limits, model_limits = key.limits, served.limits
        windows: list[Window] = []
        if limits.tpm is not None or (model_limits is not None and model_limits.tpm is not None) or key.budget:
            ticket.estimate = estimate_tokens(data, body)
        windows += _windows(f"key:{key.id}", limits.rpm, limits.tpm, ticket.estimate)
        if model_limits is not None:
            windows += _windows(f"model:{served.name}", model_limits.rpm, model_limits.tpm, ticket.estimate)
        lease = self._lease(f"key:{key.id}", limits.concurrent)
        hold = None
        if key.budget is not None:
            most = Usage(len(body) // 4, ticket.estimate - len(body) // 4)
            hold = self._hold(key, cost_nano(served.hold_price, most))
        if not windows and lease is None and hold is None:
            return None
        return Admission(windows, lease, hold, time.time())

    @staticmethod
    def _hold(key: Key, amount: int) -> Hold:
        assert key.budget is not None
        return Hold(budget_key(key.id, key.budget), round(key.budget.usd * NANO), amount)

    async def _decide(self, admission: Admission, when_closed: Exception | None) -> Verdict | None:
        """The store's verdict; None (admit unchecked) while the store is down and the
        policy is open, else `when_closed` is raised (None: the key's 503 `limits_unavailable`)."""
        try:
            verdict = await self._limits.admit(admission)
        except StoreDown as e:
            self._store_failed(e)
            if self._open_on_error:
                return None
            raise when_closed or ApiError(
                503, "Rate limits cannot be checked right now; try again shortly.", type="server_error",
                code="limits_unavailable", headers=[(b"retry-after", b"1")]) from None
        self._store_ok()
        return verdict

    def _lease(self, scope: str, concurrent: int | None) -> Lease | None:
        if concurrent is None:
            return None
        return Lease(f"concurrent:{scope}", concurrent, f"{random.getrandbits(64):016x}", self._lease_ttl_s)

    async def settle(self, ticket: Ticket, provider: str | None, usage: Usage | None, cost: int,
                     cache_hit: bool = False) -> None:
        """After the answer (or the failure): correct, free, spend and record."""
        s = Settlement()
        a = ticket.admission
        if a is not None and ticket.verdict is not None and ticket.verdict.allowed:
            used = 0 if usage is None else usage.prompt_tokens + usage.completion_tokens
            at = ticket.verdict.at or a.now    # the bucket the store charged, by its own clock
            s.corrections = [(win, at, used - win.amount) for win in a.windows
                             if win.family == "tokens" and used != win.amount]
            s.lease, s.hold, s.spent_nano, s.given = a.lease, a.hold, cost, ticket.verdict.given
        if provider is not None:
            u = usage or Usage()
            s.entry = LedgerEntry(today(), ticket.key, ticket.model, provider, 1, u.prompt_tokens,
                                  u.completion_tokens, u.cached_tokens, cost, int(cache_hit))
        if s.entry is None and not s.corrections and s.lease is None and s.hold is None:
            return
        try:
            await self._limits.settle(s)
        except StoreDown as e:
            self._store_failed(e)
        else:
            self._store_ok()

    def _store_failed(self, e: Exception) -> None:
        self.store_errors += 1
        STORE_ERRORS.inc()
        if not self._down:
            self._down = True
            log.warning("state store unreachable (%s); limits %s until it is back", e,
                        "are not enforced" if self._open_on_error else "refuse requests")

    def _store_ok(self) -> None:
        if self._down:
            self._down = False
            log.warning("state store reachable again; limits enforced")


def budget_key(key_id: str, budget: Budget) -> str:
    """Where a key's spend in its budget's current period is counted (by id: a reused name starts afresh)."""
    day_from, day_to = period(budget)
    return f"budget:{key_id}:{day_from}:{day_to}"


# A key's limits as the store counts them: (name in the config, window family or None for the
# concurrency lease, store key prefix, window_s); the keys as `_admission`, `admit_video` and `_lease` name them.
_KEY_LIMITS = (("rpm", "requests", "rpm", 60), ("tpm", "tokens", "tpm", 60),
               ("concurrent", None, "concurrent", 0), ("videos_per_hour", "videos", "vph", 3600))


async def limits_in_use(store: Store, keys: list[tuple[str, KeyLimits]]) -> list[dict[str, dict[str, int]]]:
    """Each key's (id, limits) use of its own limits this moment, {"rpm": {"used", "limit"}, ...} with
    only the limits it has, read in one store call for all of them. For reports: nothing is charged."""
    windows: list[Window] = []
    leases: list[str] = []
    asked: list[list[tuple[str, int, bool, int]]] = []    # per key: (limit, its value, a lease?, index asked)
    for kid, limits in keys:
        mine = []
        for name, family, prefix, window_s in _KEY_LIMITS:
            limit = getattr(limits, name)
            if limit is None:
                continue
            if family is None:
                mine.append((name, limit, True, len(leases)))
                leases.append(f"{prefix}:key:{kid}")
            else:
                mine.append((name, limit, False, len(windows)))
                windows.append(Window(family, f"{prefix}:key:{kid}", limit, window_s, 0))
        asked.append(mine)
    if not windows and not leases:
        return [{} for _ in keys]
    use = await store.limits.usage(windows, leases)
    return [{name: {"used": (use.leases if lease else use.windows)[i], "limit": limit}
             for name, limit, lease, i in mine} for mine in asked]


def _windows(scope: str, rpm: int | None, tpm: int | None, tokens: int) -> list[Window]:
    """The per-minute windows of one scope (a key, a model or a provider)."""
    out = []
    if rpm is not None:
        out.append(Window("requests", f"rpm:{scope}", rpm, 60, 1))
    if tpm is not None:
        out.append(Window("tokens", f"tpm:{scope}", tpm, 60, tokens))
    return out


class Gate(Protocol):
    """What the router asks before each attempt: may this provider take one more
    call now (a Ticket to give back after, or None), else TargetFull."""

    async def admit(self, provider: str, limits: ProviderLimits | None) -> Ticket | None: ...

    async def release(self, ticket: Ticket | None, usage: Usage | None) -> None: ...


class TargetGate:
    """Providers' own limits, checked per attempt by the router (only for models
    with a limited provider among their targets)."""

    def __init__(self, limiter: Limiter, data: dict[str, Any], body: bytes) -> None:
        self._limiter = limiter
        self._data = data
        self._body = body

    async def admit(self, provider: str, limits: ProviderLimits | None) -> Ticket | None:
        if limits is None:
            return None
        return await self._limiter.admit_target(provider, limits, self._data, self._body)

    async def release(self, ticket: Ticket | None, usage: Usage | None) -> None:
        if ticket is not None:
            await self._limiter.settle(ticket, None, usage, 0)


def _duration(seconds: float) -> bytes:
    """OpenAI's reset format: 20ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms".encode()
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return (f"{minutes}m{secs}s" if minutes else f"{secs}s").encode()


def _headers(windows: list[Window], verdict: Verdict) -> Headers:
    """OpenAI's x-ratelimit-* headers, for the key's own request and token windows."""
    out: Headers = []
    for i, win in enumerate(windows):
        if not win.key.startswith(("rpm:key:", "tpm:key:")):
            continue
        name = win.family.encode()
        out.append((b"x-ratelimit-limit-" + name, str(win.limit).encode()))
        if verdict.allowed:
            out.append((b"x-ratelimit-remaining-" + name, str(verdict.remaining[i]).encode()))
            out.append((b"x-ratelimit-reset-" + name, _duration(verdict.reset_s[i])))
        elif verdict.refused_by == win.family:
            out.append((b"x-ratelimit-remaining-" + name, b"0"))
            out.append((b"x-ratelimit-reset-" + name, _duration(verdict.retry_after_s)))
    return out


def _refusal(key: Key, a: Admission, verdict: Verdict, headers: Headers) -> ApiError:
    retry = [(b"retry-after", str(max(1, math.ceil(verdict.retry_after_s))).encode())]
    by = verdict.refused_by
    if by == "budget":
        assert key.budget is not None
        return ApiError(429, f"You exceeded your current quota: key '{key.name}' has used its budget of "
                             f"${usd(round(key.budget.usd * NANO))} for this {key.budget.period}.",
                        type="insufficient_quota", code="insufficient_quota", headers=headers)
    if by == "concurrent":
        return ApiError(429, f"Too many requests in flight for key '{key.name}' (limit "
                             f"{a.lease.limit if a.lease else 0}); retry when one finishes.",
                        type="requests", code="rate_limit_exceeded", headers=[*retry, *headers])
    win = next(w for w in a.windows if w.family == by)
    unit = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)",
            "videos": "videos per hour"}.get(by or "", by)
    scope = f"key '{key.name}'" if ":key:" in win.key else f"model '{win.key.split(':', 2)[2]}'"
    return ApiError(429, f"Rate limit reached for {scope} on {unit}: Limit {win.limit}, Requested {win.amount}. "
                         f"Please try again in {verdict.retry_after_s:.3g}s.",
                    type=by or "requests", code="rate_limit_exceeded", headers=[*retry, *headers])


def hold_price(prices: list[Price | None]) -> Price | None:
    """The dearest of a model's target prices, per part: what a budget holds against."""
    known = [p for p in prices if p is not None]
    if not known:
        return None
    return Price(input_per_mtok=max(p.input_per_mtok for p in known),
                 output_per_mtok=max(p.output_per_mtok for p in known),
                 per_request=max(p.per_request for p in known),
                 per_second=max(p.per_second for p in known))
