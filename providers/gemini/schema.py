"""JSON Schema, as OpenAI clients write it for tools and `json_schema`, cut down
to the OpenAPI subset Gemini's `Schema` accepts.

Gemini refuses keys it does not know (`additionalProperties`, `$schema`,
`default`, ...) with a 400, so this keeps an allow-list: `$ref`s into `$defs`
are inlined, `const` becomes a one-value `enum`, `oneOf` becomes `anyOf`, a
`null` type becomes `nullable`, and anything else outside the subset is dropped.
A recursive schema cannot be inlined and is refused.
"""
from __future__ import annotations

from typing import Any

from providers.errors import BadRequest

_KEEP = frozenset({"description", "nullable", "minItems", "maxItems", "minLength", "maxLength", "pattern",
                   "minimum", "maximum", "minProperties", "maxProperties", "propertyOrdering"})
# Gemini rejects any other `format` for these types.
_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}


def gemini_schema(schema: Any, param: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise BadRequest("a JSON schema must be an object", param=param)
    defs = schema.get("$defs") or schema.get("definitions") or {}
    return _Cleaner(defs, param).clean(schema, ())


class _Cleaner:
    def __init__(self, defs: dict[str, Any], param: str) -> None:
        self.defs = defs if isinstance(defs, dict) else {}
        self.param = param

    def clean(self, node: Any, refs: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {}
        node, refs = self._resolved(node, refs)
        out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEEP}

        types = node.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        if "null" in types:
            out["nullable"] = True
        types = [t.upper() for t in types if isinstance(t, str) and t != "null"]
        if len(types) == 1:
            out["type"] = types[0]
        elif len(types) > 1:
            out["anyOf"] = [{"type": t} for t in types]

        options = node.get("anyOf") or node.get("oneOf")
        if isinstance(options, list):
            cleaned = [self.clean(o, refs) for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(cleaned) < len(options):
                out["nullable"] = True
            if len(cleaned) == 1:
                out = {**cleaned[0], **out}
            elif cleaned:
                out["anyOf"] = cleaned

        enum = [node["const"]] if "const" in node else node.get("enum")
        if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
            out["enum"] = enum          # Gemini's enums are strings only
            out.setdefault("type", "STRING")
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
            out["format"] = fmt

        props = node.get("properties")
        if isinstance(props, dict) and props:
            out["properties"] = {name: self.clean(p, refs) for name, p in props.items()}
            required = [r for r in node.get("required") or [] if r in props]
            if required:
                out["required"] = required
            out.setdefault("type", "OBJECT")
        items = node.get("items")
        if isinstance(items, dict):
            out["items"] = self.clean(items, refs)
            out.setdefault("type", "ARRAY")
        return out

    def _resolved(self, node: dict[str, Any], refs: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """`node` with a `$ref` replaced by its definition and an `allOf` merged
        in, and the chain of definitions it came through (to catch recursion)."""
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            target = self.defs.get(name)
            if not isinstance(target, dict):
                raise BadRequest(f"schema $ref {ref!r} does not point into $defs", param=self.param)
            if name in refs:
                raise BadRequest(f"Gemini cannot take a recursive schema ($ref {ref!r})", param=self.param)
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return self._resolved({**target, **rest}, refs + (name,))
        parts = node.get("allOf")
        if isinstance(parts, list):
            node = {k: v for k, v in node.items() if k != "allOf"}
            for part in parts:
                if isinstance(part, dict):
                    part, refs = self._resolved(part, refs)
                    properties = {**part.get("properties", {}), **node.get("properties", {})}
                    node = {**part, **node}
                    if properties:
                        node["properties"] = properties
        return node, refs
