"""`${VAR}` and `${VAR:-default}` in config strings, filled from the environment."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """Replace variables in every string of a parsed YAML tree (after parsing,
    so a secret full of YAML-special characters can't change the document)."""
    env = os.environ if env is None else env
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    return value
