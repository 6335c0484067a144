"""Does a JSON value fit a JSON Schema? The subset the mock's instances are
built for (providers/mock/schema_instance.py), within a work budget: a schema
from a request may refer to itself or be made to take forever.

`format` is not checked, nor a `pattern` the mock gave up on (`Schemas.unmet`)
or does not run (`matches`): those it meets best effort only.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any

# Schema nodes visited to make one instance (and as many again to check it): a
# pydantic model's schema takes tens to hundreds; a hostile one is refused in ~40 ms.
MAX_STEPS = 10_000
MAX_NESTED = 150       # schemas inside schemas while checking (a `{"$ref": "#"}` would go on forever)
TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


class Unsatisfiable(ValueError):
    """No instance of the schema within the mock's bounds; the message says why."""


class TooComplex(Unsatisfiable):
    """The step budget is spent: no other branch is tried."""


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def has_type(value: Any, kind: str) -> bool:
    actual = json_type(value)
    return actual == kind or (kind == "number" and actual == "integer")


def equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@functools.lru_cache(maxsize=256)
def _runnable(pattern: str) -> re.Pattern[str] | None:
    """`pattern` compiled, unless it could backtrack for long: a repeated group after a repeat
    or an alternation, more than three open-ended repeats, or over 512 characters."""
    if len(pattern) > 512 or len(re.findall(r"[*+]|\{\d*,\}", pattern)) > 3 or re.search(r"[*+}|].*\)[*+{]", pattern):
        return None
    try:
        return re.compile(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):    # e.g. ECMA's \p{L}
        return None


def matches(pattern: str, text: str) -> bool | None:
    """Whether `text` matches `pattern` (searched, as JSON Schema does); None when the mock does
    not run it: the pattern is not runnable, or the text is past 256 characters."""
    compiled = _runnable(pattern)
    return None if compiled is None or len(text) > 256 else compiled.search(text) is not None


def multiple_of(value: float, step: float) -> bool:
    """As the `jsonschema` package decides it, float rounding included."""
    if isinstance(step, float):
        quotient = value / step
        try:
            return int(quotient) == quotient
        except (OverflowError, ValueError):
            return False
    return not value % step


class Schemas:
    """One request's schema: its `$ref`s resolved, and the steps spent on it counted."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.steps = 0
        self.nested = 0
        self.unmet: set[str] = set()     # patterns the mock's own strings could not match

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TooComplex(f"the schema takes more than {MAX_STEPS} steps to answer")

    def resolve(self, ref: Any) -> Any:
        """A local `$ref` (`#`, `#/$defs/Name`, any `#/json/pointer`)."""
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise Unsatisfiable(f"the mock resolves only local $ref values, not {str(ref)[:80]!r}")
        node = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise Unsatisfiable(f"$ref {ref[:80]!r} points at nothing")
        return node

    def valid(self, value: Any, schema: Any) -> bool:
        self.step()
        self.nested += 1
        try:
            if self.nested > MAX_NESTED:
                raise TooComplex(f"checking the schema nests deeper than {MAX_NESTED} levels")
            return self._valid(value, schema)
        finally:
            self.nested -= 1

    def _valid(self, value: Any, schema: Any) -> bool:
        if schema is True or schema == {}:
            return True
        if not isinstance(schema, dict):
            if schema is False:
                return False
            raise Unsatisfiable("a schema must be an object or a boolean")
        if "$ref" in schema and not self.valid(value, self.resolve(schema["$ref"])):
            return False
        kinds = schema.get("type")
        if kinds is not None:
            listed = kinds if isinstance(kinds, list) else [kinds]
            if not any(isinstance(k, str) and has_type(value, k) for k in listed):
                return False
        if "const" in schema and not equal(value, schema["const"]):
            return False
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(equal(value, e) for e in enum):
            return False
        return self._combinators_hold(value, schema) and self._kind_holds(value, schema)

    def _combinators_hold(self, value: Any, schema: dict[str, Any]) -> bool:
        for key in ("allOf", "anyOf", "oneOf"):
            branches = schema.get(key)
            if branches is None:
                continue
            if not isinstance(branches, list) or not branches:
                raise Unsatisfiable(f"{key} must be a non-empty array")
            matched = sum(1 for b in branches if self.valid(value, b)) if key == "oneOf" else None
            if key == "allOf" and not all(self.valid(value, b) for b in branches) \
                    or key == "anyOf" and not any(self.valid(value, b) for b in branches) \
                    or matched is not None and matched != 1:
                return False
        return "not" not in schema or not self.valid(value, schema["not"])

    def _kind_holds(self, value: Any, s: dict[str, Any]) -> bool:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._number_holds(value, s)
        if isinstance(value, str):
            pattern = s.get("pattern")
            if isinstance(pattern, str) and pattern not in self.unmet and matches(pattern, value) is False:
                return False
            return _int(s, "minLength", 0) <= len(value) <= _int(s, "maxLength", math.inf)
        if isinstance(value, list):
            return self._array_holds(value, s)
        if isinstance(value, dict):
            return self._object_holds(value, s)
        return True

    def _number_holds(self, value: float, s: dict[str, Any]) -> bool:
        checks = (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
                  ("exclusiveMinimum", lambda b: value > b), ("exclusiveMaximum", lambda b: value < b),
                  ("multipleOf", lambda b: b > 0 and multiple_of(value, b)))
        return all(fits(bound) for key, fits in checks
                   if isinstance(bound := s.get(key), (int, float)) and not isinstance(bound, bool))

    def _array_holds(self, value: list[Any], s: dict[str, Any]) -> bool:
        if not _int(s, "minItems", 0) <= len(value) <= _int(s, "maxItems", math.inf):
            return False
        prefix, items = s.get("prefixItems"), s.get("items")
        if isinstance(items, list):     # draft 4-7 tuples
            prefix, items = items, s.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        if not all(self.valid(v, p) for v, p in zip(value, prefix, strict=False)):
            return False
        if items is not None and not all(self.valid(v, items) for v in value[len(prefix):]):
            return False
        if s.get("uniqueItems") is True:
            return not any(equal(a, b) for i, a in enumerate(value) for b in value[i + 1:])
        return True

    def _object_holds(self, value: dict[str, Any], s: dict[str, Any]) -> bool:
        if not _int(s, "minProperties", 0) <= len(value) <= _int(s, "maxProperties", math.inf):
            return False
        required = s.get("required")
        if isinstance(required, list) and any(isinstance(r, str) and r not in value for r in required):
            return False
        props = s.get("properties")
        props = props if isinstance(props, dict) else {}
        extra = s.get("additionalProperties", True)
        for key, v in value.items():
            self.step()
            if not self.valid(v, props[key] if key in props else extra):
                return False
        return True


def _int(s: dict[str, Any], key: str, default: float) -> float:
    v = s.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default
