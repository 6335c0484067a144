"""Tool arguments keep their integers exactly, however long (providers/exact_json.py)."""
from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers import exact_json


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20))
def test_any_json_comes_back_as_written(value):
    text = json.dumps(value)
    assert exact_json.loads(text) == value
    assert exact_json.loads(text.encode()) == value


@pytest.mark.parametrize("text", ['{"n": -9223372036854775809}', '{"n": 18446744073709551616}',
                                  '[123456789012345678901234567890]', '{"a": {"b": [-99999999999999999999]}}'])
def test_integers_past_64_bits_stay_integers(text):
    value = exact_json.loads(text)
    assert json.dumps(value, separators=(",", ":")) == text.replace(" ", "")


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity, "n": 12345678901234567890}', '{"n": 12345678901234567890',
                                  "[" * 100_000 + "1234567890123456789" + "]" * 100_000, b"\xff1234567890123456789"])
def test_what_is_not_json_is_refused_as_orjson_refuses_it(text):
    with pytest.raises(orjson.JSONDecodeError):
        exact_json.loads(text)
