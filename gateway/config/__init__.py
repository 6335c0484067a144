"""Loading the YAML config: parse, fill `${VAR}`s, check. See `checks.py`."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from gateway.config.checks import Checked, ConfigError, check
from gateway.config.envsubst import substitute
from gateway.config.schema import Config

DEFAULT_PATH = "config/gateway.yaml"
# The built-in price table ships beside the default config; entries in a
# config's own `prices:` override it.
BUILTIN_PRICES = Path(__file__).resolve().parents[2] / "config" / "prices.yaml"


def default_path() -> str:
    return os.environ.get("GATEWAY_CONFIG") or DEFAULT_PATH


def load(path: str | os.PathLike[str]) -> Checked:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError([f"(file): cannot read {path}: {e.strerror}"]) from None
    return parse(text)


def parse(text: str, env: dict[str, str] | None = None) -> Checked:
    checked = check_document(read_document(text), env)
    checked.file_hash = hashlib.sha256(text.encode()).hexdigest()
    return checked


def read_document(text: str) -> dict[str, Any]:
    """The YAML as written (`${VAR}`s not yet filled in): what config versions keep."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError([f"{where}: invalid YAML: {getattr(e, 'problem', e)}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top): the config must be a mapping"])
    return raw


def check_document(document: dict[str, Any], env: dict[str, str] | None = None) -> Checked:
    """Fill in `${VAR}`s from this process's environment, add the built-in prices, check."""
    raw = substitute(document, env)
    if isinstance(raw, dict) and isinstance(raw.get("prices") or {}, dict):
        raw = {**raw, "prices": {**builtin_prices(), **(raw.get("prices") or {})}}
    checked = check(raw)
    checked.document = document
    return checked


def builtin_prices() -> dict[str, Any]:
    try:
        return yaml.safe_load(BUILTIN_PRICES.read_text()) or {}
    except OSError:
        return {}


__all__ = ["Checked", "Config", "ConfigError", "check", "check_document", "default_path", "load", "parse",
           "read_document"]
