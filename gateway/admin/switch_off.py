"""What a config edit would switch off: the admin API, a configured secret, a
provider that models route to, a key. Such an edit is refused unless it
carries `?confirm=disable`, since an unset `${VAR}` turns these off silently
(and, for the admin key, locks out the API that could undo it)."""
from __future__ import annotations

from typing import Any

from gateway.config import Checked

CONFIRM = "disable"   # ?confirm=disable: the caller means to switch these off


def switched_off(old: Checked, new: Checked, new_document: dict[str, Any]) -> list[str]:
    """Why `new` switches off something `old` had on, one line each; [] when nothing."""
    reasons: list[str] = []
    if old.config.auth.admin_key and not new.config.auth.admin_key:
        reasons.append("auth.admin_key would be empty: the admin API would be off, and only the config file "
                       "and a restart could turn it back on")
    before, after = old.config.webhooks, new.config.webhooks
    if before.secret and not after.secret:
        reasons.append(f"webhooks.secret would be empty: no webhooks would be sent "
                       f"({len(after.endpoints)} endpoint(s) configured, plus each job's callback_url)")
    routed = _routed(new_document)
    for name, why in new.disabled.items():
        if name not in old.disabled and routed.get(name):
            reasons.append(f"provider '{name}' would be off ({why}) while {', '.join(sorted(routed[name]))} "
                           "route(s) to it")
    had_secret = {k.name for k in old.config.auth.keys if k.key or k.key_hash}
    for k in new.config.auth.keys:
        if k.name in had_secret and not (k.key or k.key_hash):
            reasons.append(f"key '{k.name}' would be off: its secret would be empty")
    return reasons


def _routed(document: dict[str, Any]) -> dict[str, set[str]]:
    """provider name -> the models whose routes name it."""
    out: dict[str, set[str]] = {}

    def walk(node: Any, model: str) -> None:
        if isinstance(node, dict):
            provider = node.get("provider")
            if isinstance(provider, str):
                out.setdefault(provider, set()).add(model)
            for value in node.values():
                walk(value, model)
        elif isinstance(node, list):
            for value in node:
                walk(value, model)

    for m in document.get("models") or []:
        if isinstance(m, dict):
            walk(m.get("route"), str(m.get("name", "?")))
    return out
