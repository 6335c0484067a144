"""Checks dicts against OpenAI's own OpenAPI schemas for the Responses API.

The schemas the tests need (`Response`, `ResponseStreamEvent` and everything they `$ref`) are cut out of
OpenAI's OpenAPI document once and committed as tests/data/responses/openapi_responses.json, so the tests
read only that file. To refresh it from a newer document:

    .venv/bin/python -m tests.responses.schema path/to/openapi.yaml
"""
from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "responses" / "openapi_responses.json"
ROOTS = ("Response", "ResponseStreamEvent")
_PREFIX = "#/components/schemas/"


def validate(instance: Any, name: str) -> None:
    """Raises jsonschema.ValidationError when `instance` does not fit the named schema."""
    _validator(name).validate(instance)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    components = json.loads(SCHEMAS.read_text())
    # refs in the document are "#/components/schemas/X": keep that layout under the root so they resolve
    root = {"$ref": _PREFIX + name, "components": {"schemas": components}}
    return jsonschema.Draft202012Validator(root)


def extract(document: dict, roots: tuple[str, ...] = ROOTS) -> dict:
    """The named schemas and their `$ref` closure, with OpenAPI's quirks turned into plain JSON Schema."""
    schemas = document["components"]["schemas"]
    found: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = _plain(schemas[name])
        todo.extend(_refs(schemas[name]))
    return dict(sorted(found.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        own = [ref[len(_PREFIX):]] if isinstance(ref, str) and ref.startswith(_PREFIX) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


_NOT_SCHEMA = ("nullable", "discriminator", "example", "examples", "description", "title", "deprecated")


def _plain(node: Any, names: bool = False) -> Any:
    """OpenAPI 3.0 leftovers in the 3.1 document made plain JSON Schema 2020-12, and prose dropped.
    `names` marks a `properties` map, whose keys are field names, not keywords."""
    if isinstance(node, list):
        return [_plain(value) for value in node]
    if not isinstance(node, dict):
        return node
    if names:
        return {key: _plain(value) for key, value in node.items()}
    out = {key: _plain(value, key in ("properties", "patternProperties")) for key, value in node.items()
           if not key.startswith("x-") and key not in _NOT_SCHEMA}
    if isinstance(out.get("properties"), dict):
        # OpenAI answers optional fields it has no value for as null (`"user": null`), where the document
        # types them without null; the SDK reads them as Optional too
        required = set(out.get("required") or ())
        out["properties"] = {key: value if key in required else {"anyOf": [value, {"type": "null"}]}
                             for key, value in out["properties"].items()}
    if "oneOf" in out:
        # OpenAI's unions overlap (branches rarely forbid extra fields), so "exactly one" fails on valid data
        out["anyOf"] = out.pop("oneOf")
    if node.get("nullable") is True:
        out = {"anyOf": [out, {"type": "null"}]}    # 3.0 `nullable` means null is allowed too
    return out


def main(argv: list[str]) -> None:
    document = yaml.load(Path(argv[1]).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    SCHEMAS.parent.mkdir(parents=True, exist_ok=True)
    SCHEMAS.write_text(json.dumps(extract(document), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SCHEMAS}")


if __name__ == "__main__":
    main(sys.argv)
