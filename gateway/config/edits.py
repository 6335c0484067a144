"""What the admin API does to a config document (the YAML as written, with
`${VAR}`s unfilled) before it is checked: JSON merge patch, hiding secrets
when it is shown, putting them back when an edit sends the hidden marker,
and a one-line summary of what changed. Pure."""
from __future__ import annotations

import copy
import re
from typing import Any

REDACTED = "***"
# Fields that hold secrets, wherever they appear (keys, providers, webhooks...).
SECRET_FIELDS = frozenset({"key", "api_key", "admin_key", "secret", "secret_access_key", "session_token",
                           "azure_ad_token", "link_secret", "access_key_id"})
_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$")   # "${VAR}" shows no secret
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@/]*@")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, `null` removes a key, anything else
    (lists included) replaces what was there."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def redact(document: Any) -> Any:
    """The document with every literal secret replaced by "***" (references
    to environment variables are shown: they hold no secret)."""
    if isinstance(document, dict):
        return {k: _hidden(k, v) for k, v in document.items()}
    if isinstance(document, list):
        return [redact(v) for v in document]
    return document


def _hidden(field: str, value: Any) -> Any:
    if field in SECRET_FIELDS and isinstance(value, str) and value and not _REFERENCE.match(value):
        return REDACTED
    if field == "redis_url" and isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1" + REDACTED + "@", value)
    return redact(value)


def restore_secrets(new: Any, old: Any) -> Any:
    """`new` with each "***" put back to the value at the same place in `old`
    (a document read from GET /admin/config can be edited and sent back)."""
    if isinstance(new, dict):
        old_map = old if isinstance(old, dict) else {}
        out = {}
        for k, v in new.items():
            if v == REDACTED and k in old_map:
                out[k] = old_map[k]
            elif k == "redis_url" and isinstance(v, str) and REDACTED in v and isinstance(old_map.get(k), str):
                out[k] = old_map[k]
            else:
                out[k] = restore_secrets(v, old_map.get(k))
        return out
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [restore_secrets(v, _same_item(v, old_list, i)) for i, v in enumerate(new)]
    return new


def _same_item(item: Any, old: list, index: int) -> Any:
    """The old list item this one stands for: the one with the same `name`, else the same place."""
    if isinstance(item, dict) and "name" in item:
        for candidate in old:
            if isinstance(candidate, dict) and candidate.get("name") == item["name"]:
                return candidate
    return old[index] if index < len(old) else None


def changes(old: Any, new: Any, path: str = "") -> list[str]:
    """The paths that differ, shallowest first: "models[2].route", "+rules[0]", "-providers[3]"."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            where = f"{path}.{k}" if path else str(k)
            if k not in old:
                out.append("+" + where)
            elif k not in new:
                out.append("-" + where)
            else:
                out += changes(old[k], new[k], where)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            where = f"{path}[{i}]"
            if i >= len(old):
                out.append("+" + where)
            elif i >= len(new):
                out.append("-" + where)
            else:
                out += changes(old[i], new[i], where)
        return out
    return [] if old == new else [path or "(whole)"]


def summary(old: Any, new: Any, most: int = 8) -> str:
    found = changes(old, new)
    if not found:
        return "no change"
    shown = ", ".join(found[:most])
    return f"changed {shown}" + (f" and {len(found) - most} more" if len(found) > most else "")
