"""One config version, compiled once: keys, rules, prices, providers and the
served models' routes, with what a request needs to resolve its model.

A new version builds a new Runtime and swaps it in whole (gateway/live_config.py);
nothing in it changes afterwards. What outlives versions (the store, what
targets learned, the video service) is the process's `Services`.
"""
from __future__ import annotations

import functools
import logging
import time

from gateway.auth import Key, Keys
from gateway.config import Checked
from gateway.config.schema import ModelConfig, RouteConfig
from gateway.errors import ApiError, model_not_found
from gateway.images import workers as image_workers
from gateway.limits import Limiter, hold_price
from gateway.prices import Prices
from gateway.routes import Route, ServedModel, Target
from gateway.rules import Rules
from gateway.services import Services
from providers.base import Provider
from providers.options import BreakerConfig
from providers.registry import TYPES

log = logging.getLogger("gateway")

_ENDPOINT = {"chat": "v1/chat/completions", "embedding": "v1/embeddings", "video": "v1/videos",
             "image": "v1/images/generations", "speech": "v1/audio/speech",
             "transcription": "v1/audio/transcriptions"}


class Runtime:
    def __init__(self, checked: Checked, services: Services, version: int = 0, file_hash: str | None = None) -> None:
        config = checked.config
        self.config = config
        self.services = services
        self.store = services.store
        self.limiter = Limiter(self.store, config.state)
        self.loaded_at = int(time.time())
        self.book = services.book
        self.tracing = services.tracing         # None: tracing off (gateway/telemetry/)
        self.keys = Keys(config.auth.keys)
        self.rules = Rules(config.rules)
        self.prices = Prices(config.prices)
        self.max_body = int(config.server.max_body_mb * 1024 * 1024)
        self.max_parse_ms = config.server.max_json_parse_ms
        self.providers: dict[str, Provider] = {
            p.name: TYPES[p.type](p) for p in config.providers if p.name not in checked.disabled}
        embedded = not config.state.redis_url
        for p in self.providers.values():    # local image providers whose workers make their images
            if "images" in p.operations and p.local and not p.runs_in(embedded):
                p.hand_off = functools.partial(image_workers.hand_off, self)
        self.models: dict[str, ServedModel] = {}
        for m in config.models:
            served = self._compile(m)
            if served is not None:
                self.models[m.name] = served
        self._direct: dict[tuple[str, str], ServedModel] = {}   # `provider/model` names, least recently used first
        self.version = version                    # the config version this is (gateway/live_config.py)
        self.document = checked.document or {}    # the config as written, `${VAR}`s unfilled
        self.file_hash = checked.file_hash if file_hash is None else file_hash   # of the file it was seeded from
        self.disabled = checked.disabled          # provider name -> why it is off
        # The one count that changes: requests and video runs holding this version, so
        # the old one's connections close only once they are done.
        self.active = 0

    # -- compiling -----------------------------------------------------------

    def _compile(self, m: ModelConfig) -> ServedModel | None:
        route = self._route(m.route, m.name)
        if route is None:
            log.info("model '%s' is off: none of its providers is enabled", m.name)
            return None
        leaves = route.leaves()
        return ServedModel(m.name, m.kind, route, m.retries, m.timeout_s, m.attempt_timeout_s, leaves,
                           route.plan() if route.is_fixed() else None, m.limits,
                           hold_price([t.price for t in leaves]), m.cache,
                           any(t.provider.options.limits is not None for t in leaves))

    def _route(self, rc: RouteConfig, public: str) -> Route | None:
        nodes: list[Target | Route] = []
        for t in rc.targets:
            if isinstance(t, RouteConfig):
                sub = self._route(t, public)
                if sub is not None:
                    nodes.append(sub)
            elif t.provider in self.providers:   # disabled providers drop out of routes
                nodes.append(self._target(t.provider, t.model or public, t.weight))
        return Route(rc.strategy, nodes, rc.weight) if nodes else None

    def _target(self, provider: str, model: str, weight: float = 1.0, *, direct: bool = False) -> Target:
        p = self.providers[provider]
        price = self.prices.get(provider, model, p.options.type)
        cost = float("inf") if price is None else \
            (price.input_per_mtok + price.output_per_mtok) / 1000 + price.per_request
        book = self.book.direct if direct else self.book.get
        return Target(p, model, weight, book(f"{provider}/{model}", self._breaker(p)), cost, price)

    def _breaker(self, provider: Provider) -> BreakerConfig:
        return provider.options.breaker or self.config.breaker

    # -- per request ---------------------------------------------------------

    def resolve(self, key: Key, requested: str, kind: str) -> tuple[ServedModel, str | None]:
        """The model that serves this request (after rules), or the 404/400 to answer."""
        decision = self.rules.apply(key.name, requested)
        name = decision.model
        if not key.may_use(name):
            raise model_not_found(requested)
        served = self.models.get(name) or self._direct_model(name, kind)
        if served is None:
            raise model_not_found(requested)
        if served.kind != kind:
            raise ApiError(404, f"'{requested}' is a {served.kind} model and is not served at "
                                f"/{_ENDPOINT[kind]}; use /{_ENDPOINT[served.kind]}",
                           param="model", code="model_not_supported")
        return served, decision.strategy

    def _direct_model(self, name: str, kind: str) -> ServedModel | None:
        """`provider/model` reaches that provider directly, with no route configured.
        Clients choose these names, so the memo (a price lookup saved: ~7 µs) keeps
        the most recently used only, as many as the book keeps their targets."""
        memo = self._direct
        served = memo.pop((name, kind), None)
        if served is not None:
            target = served.targets[0]
            if self.book.direct(target.id, self._breaker(target.provider)) is target.stats:
                memo[(name, kind)] = served         # (re)inserted last: the most recently used
                return served
        provider, slash, model = name.partition("/")
        if not slash or not model or provider not in self.providers:
            return None                             # no state for a provider that is not there
        target = self._target(provider, model, direct=True)
        served = ServedModel(name, kind, Route("fallback", [target]), 0, 60.0, None, [target], [target],
                             None, target.price, None, target.provider.options.limits is not None)
        if len(memo) >= self.book.max_direct:
            del memo[next(iter(memo))]              # the least recently used
        memo[(name, kind)] = served
        return served

    def public_models(self, key: Key) -> list[ServedModel]:
        return [m for m in self.models.values() if key.may_use(m.name)]

    async def close(self) -> None:
        for p in self.providers.values():
            await p.close()
