"""Validation of a parsed config: shape, each adapter's options, and
cross-references. Collects every error with its YAML path rather than
stopping at the first, so `gateway check` can list them all."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway import telemetry
from gateway.config import schema
from gateway.webhooks.signing import SECRET_PREFIX, check_secret
from providers.registry import TYPES

_SECTIONS: dict[str, type[BaseModel]] = {"server": schema.ServerConfig, "state": schema.StateConfig,
             "auth": schema.AuthConfig, "breaker": schema.BreakerConfig,
             "videos": schema.VideosConfig, "webhooks": schema.WebhooksConfig,
             "logging": schema.LoggingConfig, "telemetry": schema.TelemetryConfig,
             "responses": schema.ResponsesConfig, "files": schema.FilesConfig,
             "batches": schema.BatchesConfig}
_LISTS: dict[str, type[BaseModel]] = {"providers": schema.ProviderConfig, "models": schema.ModelConfig,
                                      "rules": schema.RuleConfig}
_OPERATION = {"chat": "chat", "embedding": "embeddings", "video": "video", "image": "images", "speech": "speech",
              "transcription": "transcriptions"}     # a transcription model serves translations too
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class Checked:
    config: schema.Config
    disabled: dict[str, str] = field(default_factory=dict)   # provider name -> why
    notes: list[str] = field(default_factory=list)
    document: dict[str, Any] | None = None   # the config as written, `${VAR}`s unfilled (what versions keep)
    file_hash: str = ""                      # sha256 of the YAML file it came from, if it did


def check(raw: Any) -> Checked:
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(["(top): the config must be a mapping"])
    for key in raw:
        if key not in _SECTIONS and key not in _LISTS and key != "prices":
            errors.append(f"{key}: unknown section")

    parts: dict[str, Any] = {}
    for name, model in _SECTIONS.items():
        parts[name] = _validate(model, raw.get(name) or {}, name, errors)
    for name, model in _LISTS.items():
        items = raw.get(name) or []
        if not isinstance(items, list):
            errors.append(f"{name}: must be a list")
            items = []
        parts[name] = [_validate(model, item, f"{name}[{i}]", errors) for i, item in enumerate(items)]
    prices = raw.get("prices") or {}
    if not isinstance(prices, dict):
        errors.append("prices: must be a mapping of 'provider/model' to prices")
        prices = {}
    parts["prices"] = {k: _validate(schema.Price, v, f"prices.{k}", errors) for k, v in prices.items()}

    providers = _check_providers(parts["providers"], errors)
    disabled = {p.name: why for p in providers.values()
                if (why := TYPES[p.type].disabled_reason(p)) is not None}
    _check_models(parts["models"], providers, errors)
    _check_rules(parts["rules"], parts["models"], providers, errors)
    _check_keys(parts["auth"], errors)
    _check_webhooks(parts["webhooks"], errors)
    _check_telemetry(parts["telemetry"], errors)
    for k in parts["prices"]:
        if "/" not in k:
            errors.append(f"prices.{k}: name prices as 'provider/model' (globs allowed)")
    if errors:
        raise ConfigError(sorted(errors, key=_document_order))

    config = schema.Config.model_construct(**{**parts, "providers": list(providers.values())})
    notes = [f"provider '{name}' disabled: {why}" for name, why in disabled.items()]
    return Checked(config, disabled, notes)


_ORDER = ["server", "state", "auth", "breaker", "providers", "models", "rules", "prices", "videos", "webhooks",
          "logging", "telemetry"]
_ITEM = re.compile(r"^(\w+)(?:\[(\d+)\])?")


def _document_order(error: str) -> tuple[int, int]:
    """Errors sorted as the sections and items they point at appear in the file
    (stable, so each item's own errors keep their order)."""
    m = _ITEM.match(error)
    if m is None or m.group(1) not in _ORDER:
        return (len(_ORDER), 0)
    return (_ORDER.index(m.group(1)), int(m.group(2) or 0))


def _validate(model: type[BaseModel], value: Any, path: str, errors: list[str]) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as e:
        for err in e.errors():
            errors.append(f"{_path(path, err['loc'])}: {err['msg']}")
        return None


def _path(base: str, loc: tuple[Any, ...]) -> str:
    out = base
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("_"):   # union tags, not YAML keys
            out += f".{part}" if out else str(part)
    return out


def _check_providers(items: list[Any], errors: list[str]) -> dict[str, schema.ProviderConfig]:
    out: dict[str, schema.ProviderConfig] = {}
    for i, p in enumerate(items):
        if p is None:
            continue
        path = f"providers[{i}]"
        cls = TYPES.get(p.type)
        if cls is None:
            errors.append(f"{path}.type: unknown provider type '{p.type}' (known: {', '.join(sorted(TYPES))})")
            continue
        options = _validate(cls.Options, p.model_dump(), path, errors)
        if options is None:
            continue
        if p.name in out:
            errors.append(f"{path}.name: duplicate provider name '{p.name}'")
            continue
        out[p.name] = options
    return out


def _check_models(models: list[Any], providers: dict[str, schema.ProviderConfig], errors: list[str]) -> None:
    seen: set[str] = set()
    for i, m in enumerate(models):
        if m is None:
            continue
        if m.name in seen:
            errors.append(f"models[{i}].name: duplicate model name '{m.name}'")
        seen.add(m.name)
        _check_route(m.route, f"models[{i}].route", _OPERATION[m.kind], m.kind, providers, errors)


def _check_route(route: schema.RouteConfig, path: str, op: str, kind: str,
                 providers: dict[str, schema.ProviderConfig], errors: list[str]) -> None:
    for j, t in enumerate(route.targets):
        where = f"{path}.targets[{j}]"
        if isinstance(t, schema.RouteConfig):
            _check_route(t, where, op, kind, providers, errors)
            continue
        p = providers.get(t.provider)
        if p is None:
            errors.append(f"{where}.provider: unknown provider '{t.provider}'")
        elif op not in TYPES[p.type].operations:
            errors.append(f"{where}.provider: provider '{t.provider}' (type {p.type}) cannot serve {kind} models")


def _check_rules(rules: list[Any], models: list[Any], providers: dict[str, schema.ProviderConfig],
                 errors: list[str]) -> None:
    names = {m.name for m in models if m is not None}
    for i, r in enumerate(rules):
        if r is None:
            continue
        if r.model is None and r.strategy is None:
            errors.append(f"rules[{i}]: a rule must set 'model' or 'strategy'")
        if r.model is not None and r.model not in names and r.model.split("/", 1)[0] not in providers:
            errors.append(f"rules[{i}].model: unknown model '{r.model}'")


def _check_webhooks(hooks: schema.WebhooksConfig | None, errors: list[str]) -> None:
    if hooks is None:
        return
    if hooks.secret:
        if not check_secret(hooks.secret):
            errors.append(f"webhooks.secret: must look like '{SECRET_PREFIX}<base64>' "
                          "(make one with: python -m gateway.webhooks.signing)")
    elif hooks.endpoints:
        errors.append("webhooks.secret: endpoints are configured but no secret signs their events")
    for i, e in enumerate(hooks.endpoints):
        if not e.url.lower().startswith(("http://", "https://")):
            errors.append(f"webhooks.endpoints[{i}].url: must be an http or https URL")


def _check_telemetry(cfg: schema.TelemetryConfig | None, errors: list[str]) -> None:
    if cfg is None or not cfg.otlp_endpoint:
        return
    if not cfg.otlp_endpoint.lower().startswith(("http://", "https://")):
        errors.append("telemetry.otlp_endpoint: must be the collector's OTLP/HTTP traces URL "
                      "(http://collector:4318/v1/traces)")
    missing = telemetry.missing_packages()
    if missing:
        errors.append(f"telemetry.otlp_endpoint: tracing needs {', '.join(missing)}; "
                      "install the telemetry extra: pip install 'gateway[telemetry]'")


def _check_keys(auth: schema.AuthConfig | None, errors: list[str]) -> None:
    if auth is None:
        return
    names: set[str] = set()
    digests: set[str] = set()
    for i, k in enumerate(auth.keys):
        if k.name in names:
            errors.append(f"auth.keys[{i}].name: duplicate key name '{k.name}'")
        names.add(k.name)
        if k.key_hash and not _HASH.match(k.key_hash):
            errors.append(f"auth.keys[{i}].key_hash: expected 'sha256:' and 64 hex digits")
        digest = k.key_hash or (k.key and "sha256:" + hashlib.sha256(k.key.encode()).hexdigest())
        if digest and digest in digests:
            errors.append(f"auth.keys[{i}]: the same secret is already used by another key")
        if digest:
            digests.add(digest)
