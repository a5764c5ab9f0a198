"""JsonAnswer writes what Starlette's JSONResponse writes, byte for byte, for the values the
API's answers hold; and refuses what JSON has no form for, as the standard library does."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from api.json_answer import JsonAnswer

# Text of any characters orjson accepts (lone surrogates are not text an answer can hold),
# integers within 64 bits, booleans and None; nested in lists and dicts with text keys.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)))
_SCALARS = _TEXT | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.booleans() | st.none()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_the_same_bytes_as_jsonresponse(value):
    assert JsonAnswer(value).body == JSONResponse(value).body


def test_integer_keys_are_written_as_text_as_json_dumps_writes_them():
    value = {1: "a", "b": {2: [3]}}
    assert JsonAnswer(value).body == JSONResponse(value).body == b'{"1":"a","b":{"2":[3]}}'


@dataclass
class _Row:
    n: int


@pytest.mark.parametrize(
    "value", [datetime.datetime(2025, 1, 2, 3, 4), {"on": datetime.date(2025, 1, 2)}, _Row(1)]
)
def test_values_json_has_no_form_for_are_refused_as_before(value):
    with pytest.raises(TypeError):
        JSONResponse(value)
    with pytest.raises(TypeError):
        JsonAnswer(value)
