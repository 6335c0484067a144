"""Loading the YAML config: parse, fill `${VAR}`s, check. See `checks.py`."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from gateway.config.checks import Checked, ConfigError, check
from gateway.config.envsubst import substitute
from gateway.config.schema import Config

# The default config and the built-in prices are package data (config/ in the
# repository links to them), so they are there however the gateway was installed.
PACKAGED = files(__name__) / "gateway.yaml"
BUILTIN_PRICES = files(__name__) / "prices.yaml"
LOCAL_PATH = "config/gateway.yaml"     # relative to the working directory
_HOW_TO_CHOOSE = "name a readable file with --config PATH or the GATEWAY_CONFIG environment variable"


@dataclass(frozen=True)
class Found:
    """The config file to load, and why it was chosen."""
    path: str
    source: str     # "--config", "$GATEWAY_CONFIG", "./config/gateway.yaml" or "the packaged default"


def find(config_arg: str | None = None) -> Found:
    """--config, else $GATEWAY_CONFIG, else ./config/gateway.yaml when it exists, else the packaged default."""
    if config_arg:
        return Found(config_arg, "--config")
    if env := os.environ.get("GATEWAY_CONFIG"):
        return Found(env, "$GATEWAY_CONFIG")
    if Path(LOCAL_PATH).is_file():
        return Found(LOCAL_PATH, f"./{LOCAL_PATH}")
    return Found(str(PACKAGED), "the packaged default")


def default_path() -> str:
    """The config to load when none is named on the command line (see `find`)."""
    return find().path


def load(path: str | os.PathLike[str]) -> Checked:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError([f"(file): cannot read {path}: {e.strerror or e}; {_HOW_TO_CHOOSE}"]) from None
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
    """The shipped price table. Missing or broken means a broken install: an error,
    never an empty table (that would bill every real provider $0)."""
    try:
        table = yaml.safe_load(BUILTIN_PRICES.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError([f"(built-in prices): cannot read {BUILTIN_PRICES}: {e}; reinstall the gateway"]) from None
    if not isinstance(table, dict) or not table:
        raise ConfigError([f"(built-in prices): {BUILTIN_PRICES} holds no price table; reinstall the gateway"])
    return table


__all__ = ["Checked", "Config", "ConfigError", "Found", "check", "check_document", "default_path", "find", "load",
           "parse", "read_document"]
