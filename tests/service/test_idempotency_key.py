"""IdempotencyKey.parse: 1-128 visible ASCII characters, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from service.idempotency import MAX_KEY_LENGTH, IdempotencyKey


def _valid(key: str) -> bool:
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in key)


@given(st.text(max_size=MAX_KEY_LENGTH + 2)
       | st.text(st.characters(min_codepoint=0x1F, max_codepoint=0x80), max_size=130))
def test_parse_accepts_exactly_visible_ascii_keys(key: str) -> None:
    if _valid(key):
        assert IdempotencyKey.parse("*", key).key == key
    else:
        with pytest.raises(InvalidValue):
            IdempotencyKey.parse("*", key)


@pytest.mark.parametrize("key", ["", " ", "a b", "a\tb", "键", "x" * 129, "a\n"])
def test_parse_refuses(key: str) -> None:
    with pytest.raises(InvalidValue):
        IdempotencyKey.parse("*", key)
