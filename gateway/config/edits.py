"""What the admin API does to a config document (the YAML as written, with
`${VAR}`s unfilled) before it is checked: JSON merge patch, hiding secrets
when it is shown, putting them back when an edit sends the hidden marker,
and a one-line summary of what changed. Pure."""
from __future__ import annotations

import copy
import re
from typing import Any

REDACTED = "***"
# Fields that hold secrets, wherever they appear (keys, providers, webhooks...), and
# any other field named like one (adapters accept options of their own).
SECRET_FIELDS = frozenset({"key", "api_key", "admin_key", "secret", "secret_access_key", "session_token",
                           "azure_ad_token", "link_secret", "access_key_id"})
_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd|credentials?)$", re.I)
_SECRET_PARAM = re.compile(r"key|token|secret|password|passwd|pass|pwd|auth|credential|^sig$|signature|^code$", re.I)
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\}$", re.S)   # "${VAR}" shows no secret
_BARE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")

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


def redact(document: Any, field: str = "") -> Any:
    """The document with every literal secret replaced by "***": secret fields,
    every `headers:` value, URL user-info and secret query values, and the
    defaults of `${VAR:-default}` in any of them. References to environment
    variables are shown (they hold no secret)."""
    if isinstance(document, dict):
        if field == "headers":
            return {k: _shown(v, secret=True) for k, v in document.items()}
        return {k: redact(v, str(k)) for k, v in document.items()}
    if isinstance(document, list):
        return [redact(v, field) for v in document]
    if isinstance(document, str):
        return _shown(document, secret=field in SECRET_FIELDS or bool(_SECRET_NAME.search(field)))
    return document


def _shown(value: Any, *, secret: bool) -> Any:
    """How one value is shown: a secret as "***", a reference as written with
    its default hidden by the same rules, a URL without its credentials."""
    if not isinstance(value, str) or not value:
        return value
    ref = _REFERENCE.match(value)
    if ref:
        name, default = ref.groups()
        if not default:
            return value
        return "${" + name + ":-" + _shown(default, secret=secret) + "}"
    if secret:
        return REDACTED
    if "://" in value:
        return _url_shown(value)
    return value


def _url_shown(url: str) -> str:
    """A URL with user-info and secret query values hidden. The user-info runs
    to the last "@" before the query, so a password holding "@" is hidden whole."""
    scheme, _, rest = url.partition("://")
    end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at >= 0:
        user, colon, password = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{_hidden_part(password)}{rest[at:]}"
        else:
            rest = _hidden_part(user) + rest[at:]      # https://TOKEN@host: the user is the secret
        end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    if end < len(rest) and rest[end] == "?":
        query_end = rest.find("#", end)
        query_end = len(rest) if query_end < 0 else query_end
        params = []
        for part in rest[end + 1:query_end].split("&"):
            k, eq, v = part.partition("=")
            params.append(f"{k}={_hidden_part(v)}" if eq and v and _SECRET_PARAM.search(k) else part)
        rest = rest[:end + 1] + "&".join(params) + rest[query_end:]
    return f"{scheme}://{rest}"


def _hidden_part(value: str) -> str:
    return value if not value or _BARE_REFERENCE.match(value) else REDACTED


def restore_secrets(new: Any, old: Any, field: str = "") -> Any:
    """`new` with each hidden value put back to the value at the same place in
    `old`: wherever `new` holds exactly what `old` is shown as (a document read
    from GET /admin/config can be edited and sent back)."""
    if isinstance(new, dict):
        old_map = old if isinstance(old, dict) else {}
        out = {}
        for k, v in new.items():
            before = old_map.get(k)
            if v == REDACTED and k in old_map:
                out[k] = before
            elif isinstance(v, str) and REDACTED in v and k in old_map and v != before:
                shown = redact({field: {k: before}} if field == "headers" else {k: before})
                shown_value = shown[field][k] if field == "headers" else shown[k]
                out[k] = before if shown_value == v else v
            else:
                out[k] = restore_secrets(v, before, str(k))
        return out
    if isinstance(new, list):
        old_list = old if isinstance(old, list) else []
        return [restore_secrets(v, _same_item(v, old_list, i), field) for i, v in enumerate(new)]
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
