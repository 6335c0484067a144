"""A deterministic instance of a JSON Schema: the mock's answer to
`response_format: json_schema`, so `client.chat.completions.parse(...)` and
LangChain's `with_structured_output` work against it.

The subset is what the SDKs emit for pydantic models and zod: `type`, object
and array keywords, `enum`/`const`, `anyOf`/`oneOf`/`allOf`, local `$ref`s
(recursion ends on a branch that does not recurse, an empty array or null),
numeric bounds, string lengths, common `format`s and `pattern`s (best effort),
`default`. Work is bounded (depth, values, characters, steps): a schema with no
instance within the bounds raises `Unsatisfiable`, which the mock answers 400.
"""
from __future__ import annotations

import math
import random
import uuid
from typing import Any

from providers.mock.schema_check import TYPES, Schemas, TooComplex, Unsatisfiable, equal, matches

MAX_DEPTH = 32          # schema levels walked: values, and the branches chosen on the way
SHALLOW = 3             # from here on arrays get only minItems, optional properties are left out,
                        # and branches that end recursion (null, scalars) are tried first
MAX_VALUES = 2_000
MAX_CHARS = 65_536      # string characters in one instance
MAX_CANDIDATES = 64     # enum values tried against the rest of the schema
_INT64 = 2 ** 63

_MINS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_MAXES = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_INTERSECTED = ("items", "additionalProperties", "not")
_NOTES = {"$ref", "allOf", "anyOf", "oneOf", "$defs", "definitions", "$schema", "$id", "title", "description",
          "examples", "default", "discriminator", "strict"}
_HINTS = (("object", ("properties", "required", "additionalProperties", "minProperties", "maxProperties")),
          ("array", ("items", "prefixItems", "minItems", "maxItems", "uniqueItems")),
          ("string", ("minLength", "maxLength", "pattern", "format")),
          ("number", ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")))
_PATTERNS = {   # common ones, as written: dates, country, currency and language codes, phones, colours
    r"^\d{4}-\d{2}-\d{2}$": "2024-01-15",
    r"^[A-Z]{2}$": "US", r"^[A-Z]{3}$": "USD", r"^[a-z]{2}$": "en",
    r"^\+?[1-9]\d{1,14}$": "+14155550100",
    r"^#[0-9a-fA-F]{6}$": "#3366cc", r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$": "#3366cc",
}
_TRIED = ("mock", "a", "A", "0", "1", "abc", "ABC", "mock-1", "mock_1", "2024-01-15", "mock@example.com",
          "https://example.com/mock", "US", "en", "+14155550100", "#3366cc", "")


def instance(schema: Any, seed: bytes) -> Any:
    """An instance of `schema`, the same for the same schema and seed."""
    maker = _Maker(schema, seed)
    try:
        value = maker.make(schema, 0)
        maker.steps = 0     # the check has a budget of its own
        if not maker.valid(value, schema):
            raise Unsatisfiable("the mock found no instance that fits the schema")
    except RecursionError:
        raise Unsatisfiable("the schema is nested too deeply") from None
    return value


def _types(v: Any) -> set[str]:
    listed = [v] if isinstance(v, str) else v if isinstance(v, list) else TYPES
    found = {t for t in listed if t in TYPES}
    return found | {"integer"} if "number" in found else found


def _number(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


class _Maker(Schemas):
    def __init__(self, root: Any, seed: bytes) -> None:
        super().__init__(root)
        self.rng = random.Random(seed)
        self.values = 0
        self.chars = 0

    def make(self, schema: Any, depth: int) -> Any:
        _within(depth)
        self.values += 1
        if self.values > MAX_VALUES:
            raise Unsatisfiable(f"an instance would hold more than {MAX_VALUES} values")
        merged, groups, exact = self._flat(schema)
        return self._make_flat(merged, groups, depth, None if exact else schema)

    # -- $ref and allOf merged into one schema; anyOf and oneOf kept as groups to choose from --

    def _flat(self, schema: Any) -> tuple[dict[str, Any], list[tuple[str, list[Any]]], bool]:
        """The merged schema, its anyOf/oneOf groups, and whether the merge is exact. It is not
        when two parts constrain (one's `additionalProperties` does not see another's
        `properties`): an instance is then checked against the schema itself."""
        merged: dict[str, Any] = {}
        groups: list[tuple[str, list[Any]]] = []
        todo, seen, constraining = [schema], set(), 0
        while todo:
            self.step()
            s = todo.pop()
            if s is True:
                continue
            if not isinstance(s, dict):
                raise Unsatisfiable("a false schema has no instance" if s is False
                                    else "a schema must be an object or a boolean")
            ref = s.get("$ref")
            if ref is not None and not (isinstance(ref, str) and ref in seen):
                seen.add(ref if isinstance(ref, str) else "")
                todo.append(self.resolve(ref))
            for key in ("allOf", "anyOf", "oneOf"):
                branches = s.get(key)
                if branches is None:
                    continue
                if not isinstance(branches, list) or not branches:
                    raise Unsatisfiable(f"{key} must be a non-empty array")
                if key == "allOf":
                    todo.extend(branches)
                else:
                    groups.append((key, branches))
            constraining += not s.keys() <= _NOTES
            self._merge_into(merged, s)
        return merged, groups, constraining <= 1

    def _merge_into(self, into: dict[str, Any], s: dict[str, Any]) -> None:
        for key, v in s.items():
            if key in ("$ref", "allOf", "anyOf", "oneOf", "$defs", "definitions"):
                continue
            old = into.get(key)
            if key not in into:
                into[key] = v
            elif key == "type":
                both = _types(old) & _types(v)
                if not both:
                    raise Unsatisfiable("allOf asks for types that no value has at once")
                into[key] = sorted(both)
            elif key in _MINS or key in _MAXES:
                a, b = _number(old), _number(v)
                if a is not None and b is not None:
                    into[key] = max(a, b) if key in _MINS else min(a, b)
            elif key == "required" and isinstance(old, list) and isinstance(v, list):
                into[key] = old + v
            elif key == "enum" and isinstance(old, list) and isinstance(v, list):
                self.steps += len(old) * len(v) // 16
                self.step()
                into[key] = [x for x in old if any(equal(x, y) for y in v)]
            elif key == "const" and not equal(old, v):
                raise Unsatisfiable("allOf asks for two different const values")
            elif key == "properties" and isinstance(old, dict) and isinstance(v, dict):
                into[key] = {**old, **{k: {"allOf": [old[k], x]} if k in old else x for k, x in v.items()}}
            elif key in _INTERSECTED:
                into[key] = {"allOf": [old, v]}
            elif key == "multipleOf" and isinstance(old, int) and isinstance(v, int) and old > 0 and v > 0:
                into[key] = math.lcm(old, v)

    # -- choosing ----------------------------------------------------------------------------

    def _make_flat(self, s: dict[str, Any], groups: list[tuple[str, list[Any]]], depth: int, whole: Any) -> Any:
        """An instance of `s` with one branch of each group merged in; checked against `whole` too,
        when that is given (the merge was not exact)."""
        if groups:
            return self._choose(s, groups, depth, whole)
        if "const" in s or isinstance(s.get("enum"), list):
            return self._listed(s, whole)
        if "default" in s and self._fits(s["default"], s, whole):
            return s["default"]
        if "type" in s:
            kinds = sorted(_types(s["type"]) - ({"integer"} if "number" in _types(s["type"]) else set()))
        else:
            kinds = [kind for kind, keys in _HINTS if any(k in s for k in keys)] or ["string"]
        if not kinds:
            raise Unsatisfiable(f"unknown type {str(s['type'])[:80]!r}")
        kinds = self._rotated(kinds)
        if "null" in kinds:   # null ends recursion: last near the top, first further down
            kinds.remove("null")
            kinds.insert(len(kinds) if depth < SHALLOW else 0, "null")
        last = Unsatisfiable("no type of the schema fits")
        for kind in kinds:
            try:
                value = self._of_kind(kind, s, depth)
            except TooComplex:
                raise
            except Unsatisfiable as e:
                last = e
                continue
            if self._fits(value, {"not": s["not"]} if "not" in s else {}, whole):
                return value
            last = Unsatisfiable("the mock found no instance that fits the schema")
        raise last

    def _fits(self, value: Any, s: dict[str, Any], whole: Any) -> bool:
        return self.valid(value, s) and (whole is None or self.valid(value, whole))

    def _choose(self, s: dict[str, Any], groups: list[tuple[str, list[Any]]], depth: int, whole: Any) -> Any:
        _within(depth)
        kind, branches = groups[0]
        self.steps += len(branches)     # ordering them is work too
        order = self._rotated(branches)
        if depth >= SHALLOW:
            order.sort(key=_recurses)
        last = Unsatisfiable(f"no branch of {kind} fits the rest of the schema")
        for branch in order:
            try:
                merged, more, _ = self._flat(branch)
                combined = dict(s)
                self._merge_into(combined, merged)
                value = self._make_flat(combined, groups[1:] + more, depth + 1, whole)
            except TooComplex:
                raise
            except Unsatisfiable as e:
                last = e
                continue
            fits = self.valid(value, branch) if kind == "anyOf" else \
                sum(1 for b in branches if self.valid(value, b)) == 1
            if fits:
                return value
        raise last

    def _listed(self, s: dict[str, Any], whole: Any) -> Any:
        values = [s["const"]] if "const" in s else self._rotated(s["enum"])
        for value in values[:MAX_CANDIDATES]:
            if self._fits(value, s, whole):
                return value
        raise Unsatisfiable("no enum or const value fits the rest of the schema")

    def _rotated(self, items: list[Any]) -> list[Any]:
        start = self.rng.randrange(len(items)) if items else 0
        return items[start:] + items[:start]

    # -- values --------------------------------------------------------------------------------

    def _of_kind(self, kind: str, s: dict[str, Any], depth: int) -> Any:
        if kind == "null":
            return None
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind in ("integer", "number"):
            return self._number(s, kind == "integer")
        if kind == "string":
            return self._string(s)
        return self._array(s, depth) if kind == "array" else self._object(s, depth)

    def _number(self, s: dict[str, Any], integer: bool) -> float:
        lo = max((b for b in (_number(s.get("minimum")), _number(s.get("exclusiveMinimum"))) if b is not None),
                 default=None)
        hi = min((b for b in (_number(s.get("maximum")), _number(s.get("exclusiveMaximum"))) if b is not None),
                 default=None)
        base = self.rng.randrange(101)
        tried: list[float] = [base if integer else base + 0.5, base, 0, 1]
        for edge in (lo, hi):
            if edge is not None:
                tried += [edge, math.ceil(edge), math.floor(edge), math.ceil(edge) + 1, math.floor(edge) - 1,
                          edge + 1, edge - 1, edge + 0.5, edge - 0.5]
        if lo is not None and hi is not None:
            tried += [lo + (hi - lo) / 2, math.floor(lo + (hi - lo) / 2)]
        step = _number(s.get("multipleOf"))
        if step and step > 0:
            for anchor in (lo, hi, base, 0):
                if anchor is not None and abs(anchor / step) < 1e15:
                    k = math.ceil(anchor / step)
                    tried += [k * step, (k + 1) * step, (k - 1) * step, round(k * step, 12)]
        for value in tried:
            if integer:
                if not (isinstance(value, int) or value.is_integer()):
                    continue
                value = int(value)
            if isinstance(value, int) and not -_INT64 <= value < _INT64:
                value = float(value)
                if integer:
                    continue
            if math.isfinite(value) and self._number_holds(value, s):
                return value
        raise Unsatisfiable("no number fits the schema's bounds and multipleOf")

    def _string(self, s: dict[str, Any]) -> str:
        lo, hi = _number(s.get("minLength")) or 0, _number(s.get("maxLength"))
        if lo > MAX_CHARS - self.chars:
            raise Unsatisfiable(f"an instance would hold more than {MAX_CHARS} characters")
        if hi is not None and hi < lo:
            raise Unsatisfiable("maxLength is below minLength")
        pattern = s.get("pattern")
        text = _formatted(s.get("format"), self.rng) or _matching(pattern) \
            or " ".join(self._rotated(["mock", "alpha", "bravo", "charlie", "delta"])[:2])
        text = text.ljust(math.ceil(lo), "x")
        if hi is not None:
            text = text[:math.floor(hi)]
        if isinstance(pattern, str) and not matches(pattern, text):
            self.unmet.add(pattern)     # best effort: a plain string
        self.chars += len(text)
        return text

    def _array(self, s: dict[str, Any], depth: int) -> list[Any]:
        prefix, items = s.get("prefixItems"), s.get("items")
        if isinstance(items, list):     # draft 4-7 tuples
            prefix, items = items, s.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        lo, hi = math.ceil(_number(s.get("minItems")) or 0), _number(s.get("maxItems"))
        cap = math.floor(hi) if hi is not None else math.inf
        if items is False:
            cap = min(cap, len(prefix))
        if lo > cap:
            raise Unsatisfiable("no array length fits minItems, maxItems and the items allowed")
        if lo > MAX_VALUES:
            raise Unsatisfiable(f"minItems {lo} is past the mock's {MAX_VALUES} values")
        wanted = max(lo, len(prefix), lo + self.rng.randrange(3)) if depth < SHALLOW else lo
        count = int(min(wanted, cap))
        try:
            return self._items(prefix, items, count, s.get("uniqueItems") is True, depth)
        except TooComplex:
            raise
        except Unsatisfiable:
            if count == lo:
                raise
            return self._items(prefix, items, lo, s.get("uniqueItems") is True, depth)

    def _items(self, prefix: list[Any], items: Any, count: int, unique: bool, depth: int) -> list[Any]:
        out: list[Any] = []
        for i in range(count):
            schema = prefix[i] if i < len(prefix) else True if items is None else items
            for _ in range(4 if unique else 1):
                value = self.make(schema, depth + 1)
                if not unique or not any(equal(value, o) for o in out):
                    break
            else:
                raise Unsatisfiable("uniqueItems: the mock found too few distinct items")
            out.append(value)
        return out

    def _object(self, s: dict[str, Any], depth: int) -> dict[str, Any]:
        props = s.get("properties")
        props = props if isinstance(props, dict) else {}
        extra = s.get("additionalProperties", True)
        required = s.get("required")
        lo = _number(s.get("minProperties")) or 0
        hi = _number(s.get("maxProperties"))
        cap = hi if hi is not None else math.inf
        out: dict[str, Any] = {}
        for key in dict.fromkeys(required if isinstance(required, list) else []):
            if isinstance(key, str):
                if key not in props and extra is False:
                    raise Unsatisfiable(f"required property {key[:80]!r} is not allowed")
                out[key] = self.make(props.get(key, extra), depth + 1)
        for key, schema in props.items():
            if key in out or len(out) >= cap:
                continue
            if len(out) < lo or depth < SHALLOW and self.rng.random() < 0.5:
                try:
                    out[key] = self.make(schema, depth + 1)
                except TooComplex:
                    raise
                except Unsatisfiable:
                    pass    # optional: left out
        n = 0
        while len(out) < lo and extra is not False:
            n += 1
            out.setdefault(f"extra_{n}", self.make(extra, depth + 1))
        if not lo <= len(out) <= cap:
            raise Unsatisfiable("no set of properties fits minProperties and maxProperties")
        return out


def _within(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Unsatisfiable(f"the schema nests deeper than {MAX_DEPTH} levels (or recurses without an end)")


def _recurses(branch: Any) -> int:
    """0 for a branch that ends recursion with null, 1 with another scalar, 2 for one that may go on."""
    if not isinstance(branch, dict):
        return 2
    kinds = _types(branch.get("type")) if "type" in branch else set()
    if "$ref" in branch or not kinds or not kinds <= {"null", "boolean", "integer", "number", "string"}:
        return 2
    return 0 if "null" in kinds else 1


def _formatted(fmt: Any, rng: random.Random) -> str | None:
    day = rng.randrange(1, 29)
    return {"date": f"2024-01-{day:02d}", "date-time": f"2024-01-{day:02d}T12:00:00Z", "time": "12:00:00Z",
            "email": "mock@example.com", "uri": "https://example.com/mock", "url": "https://example.com/mock",
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "ipv4": "192.0.2.1",
            "ipv6": "2001:db8::1", "hostname": "example.com", "duration": "P1D"}.get(fmt) \
        if isinstance(fmt, str) else None


def _matching(pattern: Any) -> str | None:
    """A string matching `pattern`: a known one, or the first of a few tried; else None (best effort)."""
    if not isinstance(pattern, str):
        return None
    return _PATTERNS.get(pattern) or next((t for t in _TRIED if matches(pattern, t)), None)
