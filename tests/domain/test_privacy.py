"""Masking personal data (domain/privacy.py): the one function every output goes through."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.privacy import (
    looks_like_id_number,
    mask,
    mask_id_number,
    mask_mobile,
    mask_name,
    mask_text,
)
from scripts.synthetic import employer_code, id_number, union_code

WOMAN_1949 = "11010519491231002X"
MAN_1990 = id_number("110105", datetime.date(1990, 3, 7), 123)
BIRTH_DATES = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2030, 12, 31))
NUMBERS = st.builds(
    id_number,
    st.sampled_from(["110105", "310101", "440305", "650102"]),
    BIRTH_DATES,
    st.integers(min_value=0, max_value=999),
)
MOBILES = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
# Text around a number: anything but the letters and digits that would make it part of a
# longer token.
AROUND = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    ),
    max_size=8,
)


def test_the_three_masks() -> None:
    assert mask_id_number(WOMAN_1949) == "110105********002X"
    assert mask_id_number("12345") == "*****"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile(None) is None
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("王") == "*"
    assert mask_name(None) is None


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"证件{WOMAN_1949}核实", "证件110105********002X核实"),
        (f"证件 {WOMAN_1949.lower()}", "证件 110105********002x"),
        ("身份证 110105 19491231 002X 更正", "身份证 110105 ******** 002X 更正"),
        ("身份证110105-19491231-002X", "身份证110105-********-002X"),
        ("电话13812345678", "电话138****5678"),
        ("电话 138-1234-5678。", "电话 138-****-5678。"),
        ("电话 138 1234 5678", "电话 138 **** 5678"),
        ("+8613812345678", "+86138****5678"),
        ("tel:008613812345678", "tel:0086138****5678"),
        # A mistyped number (wrong check character) still carries a birth date: masked.
        (f"证件{WOMAN_1949[:-1]}3", "证件110105********0023"),
    ],
)
def test_numbers_typed_into_text_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        # Unified social credit codes are not a person's: unions, employers, letters or not.
        union_code("110105", 4, base=True),
        union_code("330106", 7, base=False),
        employer_code("330106", 123456),
        "91350100M000100Y43",
        f"缴费单位{union_code('330106', 7, base=True)}，",
        # 18 digits whose middle is no birth date: an amount, a bank reference.
        "123456789012345678",
        "转账流水号 202400000000000001",
        # Digits inside longer tokens: a UUID, a hash, a longer reference.
        "6f1c0a2e-1381-4567-8123-138123456789",
        "a13812345678",
        "1101051990030712390",
        "凭证 X110105199003071239",
        # 10 or 12 digits are no mobile number.
        "1381234567",
        "138123456789",
        "金额 1234.50 元，2024-03-07 付讫",
    ],
)
def test_other_numbers_in_text_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_what_is_taken_for_an_identity_number() -> None:
    # The birth date decides; a valid credit code whose own check character is right stays,
    # unless the identity number's check character is right too (then it is masked rather
    # than risk showing a birth date).
    assert looks_like_id_number(MAN_1990) and looks_like_id_number(MAN_1990.lower())
    assert looks_like_id_number(MAN_1990[:-1] + ("0" if MAN_1990[-1] != "0" else "1"))
    assert not looks_like_id_number("110105199013071239")  # month 13
    assert not looks_like_id_number("110105180003071239")  # before 1900
    assert not looks_like_id_number(union_code("110105", 4, base=True))


@given(NUMBERS, AROUND, AROUND)
def test_no_identity_number_or_its_birth_date_survives_in_text(
    number: str, before: str, after: str
) -> None:
    shown = mask_text(f"{before}{number}{after}")
    assert number not in shown and number[6:14] not in shown
    assert f"{number[:6]}********{number[14:]}" in shown


@given(MOBILES, AROUND, AROUND)
def test_no_mobile_number_survives_in_text(mobile: str, before: str, after: str) -> None:
    shown = mask_text(f"{before}{mobile}{after}")
    assert mobile not in shown and f"{mobile[:3]}****{mobile[-4:]}" in shown


def member(number: str, name: str = "欧阳娜娜", mobile: str | None = "13812345678") -> dict:
    birth = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    return {
        "member_id": "m-1",
        "name": name,
        "id_number": number,
        "sex": "female",
        "birth_year": birth.year,
        "birth_date": birth.isoformat(),
        "mobile": mobile,
        "organization_code": union_code("110105", 4, base=True),
    }


@given(NUMBERS, MOBILES)
def test_a_masked_member_gives_the_birth_year_and_never_the_birth_date(
    number: str, mobile: str
) -> None:
    shown = mask(member(number, mobile=mobile))
    assert shown["id_number"] == mask_id_number(number)
    assert shown["birth_date"] is None and shown["birth_year"] == int(number[6:10])
    assert shown["name"] == "欧***" and shown["mobile"] == mask_mobile(mobile)
    text = json.dumps(shown, ensure_ascii=False)
    birth = number[6:14]
    for hidden in (number, birth, f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", mobile):
        assert hidden not in text


def test_a_view_without_birth_year_gets_one() -> None:
    view = member(WOMAN_1949)
    del view["birth_year"]
    assert mask(view)["birth_year"] == 1949 and mask(view)["birth_date"] is None


def test_a_name_is_a_persons_beside_a_member_and_a_unions_elsewhere() -> None:
    data = {
        "name": "朝阳区总工会（联系电话13812345678）",
        "member": {"member_id": "m", "name": "王五"},
        "rows": [{"id_number": WOMAN_1949, "name": "李四"}],
        "description": f"报销 {WOMAN_1949} 医药费",
        "approval_ref": "朝工帮〔2024〕12号",
        "reason": "电话13912345678",
        "note": None,
    }
    assert mask(data) == {
        "name": "朝阳区总工会（联系电话138****5678）",
        "member": {"member_id": "m", "name": "王*"},
        "rows": [{"id_number": "110105********002X", "name": "李*"}],
        "description": "报销 110105********002X 医药费",
        "approval_ref": "朝工帮〔2024〕12号",
        "reason": "电话139****5678",
        "note": None,
    }


def test_in_a_persons_own_data_every_name_is_theirs() -> None:
    corrected = {"changes": {"name": "欧阳娜娜", "mobile": "13812345678"}, "note": "更正"}
    assert mask(corrected, person=True) == {
        "changes": {"name": "欧***", "mobile": "138****5678"},
        "note": "更正",
    }
    assert mask({"name": "欧阳娜娜"}, person=True) == {"name": "欧***"}


def test_masking_copies_and_leaves_the_original_alone() -> None:
    view = member(WOMAN_1949)
    before = json.dumps(view)
    mask(view)
    assert json.dumps(view) == before


def _masked_ids_only(value):
    """value with each id_number masked, tuples as lists: what mask() gives for data holding
    no other personal key."""
    if isinstance(value, list | tuple):
        return [_masked_ids_only(item) for item in value]
    if isinstance(value, dict):
        return {
            key: mask_id_number(item)
            if key == "id_number" and isinstance(item, str)
            else _masked_ids_only(item)
            for key, item in value.items()
        }
    return value


# Data of row numbers, ids, amounts and flags (keys mask() leaves alone) at any depth, with a
# person's id_number somewhere among them.
_PLAIN_DATA = st.recursive(
    st.integers() | st.text(max_size=6) | st.booleans() | st.none() | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.sampled_from(["row", "member_id", "amount", "replayed", 7]), inner)
        | st.fixed_dictionaries({"id_number": NUMBERS, "rows": inner})
    ),
    max_leaves=25,
)


@given(_PLAIN_DATA)
def test_masking_reaches_every_depth_and_leaves_every_other_value_as_it_was(value) -> None:
    assert mask(value) == _masked_ids_only(value)
