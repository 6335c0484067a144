"""Checks dicts against OpenAI's own OpenAPI schemas for the Files and Batch APIs, as
tests/responses/schema.py does for the Responses API (and with its `extract`).

The schemas the tests need (`OpenAIFile`, `ListFilesResponse`, `DeleteFileResponse`
and what they `$ref`) are cut out of OpenAI's OpenAPI document once and committed
as tests/data/files/openapi_files.json. To refresh it from a newer document:

    .venv/bin/python -m tests.files_schema path/to/openapi.yaml
"""
from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.responses.schema import extract

SCHEMAS = Path(__file__).resolve().parent / "data" / "files" / "openapi_files.json"
ROOTS = ("OpenAIFile", "ListFilesResponse", "DeleteFileResponse", "Batch", "ListBatchesResponse")


def validate(instance: Any, name: str) -> None:
    """Raises jsonschema.ValidationError when `instance` does not fit the named schema."""
    _validator(name).validate(instance)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    components = json.loads(SCHEMAS.read_text())
    root = {"$ref": "#/components/schemas/" + name, "components": {"schemas": components}}
    return jsonschema.Draft202012Validator(root)


def main(argv: list[str]) -> None:
    document = yaml.load(Path(argv[1]).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    SCHEMAS.parent.mkdir(parents=True, exist_ok=True)
    SCHEMAS.write_text(json.dumps(extract(document, ROOTS), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SCHEMAS}")


if __name__ == "__main__":
    main(sys.argv)
