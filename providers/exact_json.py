"""Parsing JSON a tool call carries, keeping its integers exact.

orjson reads an integer outside 64 bits (below -2**63 or above 2**64 - 1) as a
float, so `{"n": -9223372036854775809}` would come back as -9.223372036854776e+18:
a tool's arguments re-encoded from it would not be the ones the model wrote. A
text with a run of 19 digits or more (the only way to write such an integer) is
read by the standard library's parser instead, which keeps every integer; the
rest, nearly all, by orjson. Both refuse NaN and Infinity, which JSON has not.
"""
from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_NUMBER = re.compile(r"\d{19}")


def loads(text: str | bytes) -> Any:
    """`text` parsed (orjson.JSONDecodeError when it is not JSON)."""
    long = _LONG_NUMBER.search(text if isinstance(text, str) else text.decode("utf-8", "replace"))
    if long is None:
        return orjson.loads(text)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise orjson.JSONDecodeError(str(e), "", 0) from None
    except RecursionError:
        raise orjson.JSONDecodeError("nested too deeply", "", 0) from None


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)
