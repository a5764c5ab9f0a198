"""Identity numbers (居民身份证号), credit codes (统一社会信用代码), region codes, mobiles."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from domain.errors import InvalidValue
from domain.identity import (
    CreditCode,
    IdNumber,
    parse_mobile,
    parse_region_code,
)
from domain.privacy import mask_id_number, mask_mobile
from scripts.synthetic import employer_code, id_number, union_code

# A woman born 1949-12-31 in 朝阳区, Beijing; her check character is X.
WOMAN_1949 = "11010519491231002X"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

BIRTH_DATES = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2030, 12, 31))
VALID_NUMBERS = st.builds(
    id_number,
    st.sampled_from(["110105", "110118", "110228", "310101", "440305", "650102"]),
    BIRTH_DATES,
    st.integers(min_value=0, max_value=999),
)


def with_check(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


# --- IdNumber ------------------------------------------------------------------------------


def test_a_valid_number_parses_with_its_parts() -> None:
    number = IdNumber.parse(WOMAN_1949)
    assert number.value == WOMAN_1949
    assert number.region_code == "110105"
    assert number.birth_date == datetime.date(1949, 12, 31)
    assert number.sex == "female"


@settings(deadline=None)
@given(VALID_NUMBERS)
def test_every_synthetic_number_parses_and_gives_back_its_birth_date_and_sex(number: str) -> None:
    parsed = IdNumber.parse(number)
    assert parsed.birth_date == datetime.date(
        int(number[6:10]), int(number[10:12]), int(number[12:14])
    )
    assert parsed.sex == ("male" if int(number[16]) % 2 else "female")


@pytest.mark.parametrize(
    ("sequence", "sex"), [(1, "male"), (2, "female"), (19, "male"), (0, "female")]
)
def test_sex_follows_the_parity_of_the_seventeenth_digit(sequence: int, sex: str) -> None:
    number = id_number("110105", datetime.date(1980, 1, 1), sequence)
    assert IdNumber.parse(number).sex == sex


def test_a_wrong_check_character_is_rejected() -> None:
    wrong = WOMAN_1949[:-1] + "1"
    with pytest.raises(InvalidValue, match="check character"):
        IdNumber.parse(wrong)


@settings(deadline=None)
@given(VALID_NUMBERS, st.integers(min_value=0, max_value=16), st.integers(0, 9))
def test_any_single_digit_changed_fails_the_checksum(
    number: str, position: int, digit: int
) -> None:
    assume(number[position] != str(digit))
    tampered = number[:position] + str(digit) + number[position + 1 :]
    with pytest.raises(InvalidValue, match="check character"):
        IdNumber.parse(tampered)


def test_lowercase_x_is_accepted_and_normalised_to_uppercase() -> None:
    number = IdNumber.parse(WOMAN_1949.lower())
    assert number.value == WOMAN_1949
    assert number == IdNumber.parse(WOMAN_1949)


@pytest.mark.parametrize(
    "birth",
    [
        "19990229",  # 1999 is not a leap year
        "19000229",  # nor is 1900
        "21000229",  # nor is 2100
        "19800230",
        "19801301",
        "19800001",
        "19800100",
        "19800132",
        "19800431",
    ],
)
def test_an_impossible_birth_date_is_rejected(birth: str) -> None:
    with pytest.raises(InvalidValue, match="birth date"):
        IdNumber.parse(with_check(f"110105{birth}123"))


def test_february_29_of_a_leap_year_is_a_birth_date() -> None:
    assert IdNumber.parse(with_check("11010520000229123")).birth_date == datetime.date(2000, 2, 29)
    assert IdNumber.parse(with_check("11010519840229123")).birth_date == datetime.date(1984, 2, 29)


def test_a_birth_year_before_1900_is_rejected() -> None:
    with pytest.raises(InvalidValue, match="birth year"):
        IdNumber.parse(with_check("11010518991231123"))


@pytest.mark.parametrize(
    "region",
    [
        "119999",  # a real province, no such county
        "990101",  # no such province
        "000000",
        "110199",
    ],
)
def test_an_unknown_region_part_is_rejected(region: str) -> None:
    with pytest.raises(InvalidValue, match="region code"):
        IdNumber.parse(with_check(f"{region}19800101123"))


def test_a_county_code_younger_than_its_holder_is_accepted() -> None:
    # 110118 密云区 exists since 2015; its holders were born long before. stdnum's
    # ric.validate() rejects such numbers, which is why the domain does not call it.
    number = id_number("110118", datetime.date(1960, 5, 1), 16)
    with pytest.raises(ValidationError):
        ric.validate(number)
    parsed = IdNumber.parse(number)
    assert parsed.region_code == "110118"
    assert parsed.birth_date == datetime.date(1960, 5, 1)


def test_a_county_code_abolished_before_its_holder_was_born_is_accepted() -> None:
    # 110228 密云县 (1982-2015): numbers once issued there stay valid for life.
    assert IdNumber.parse(id_number("110228", datetime.date(2016, 1, 1), 3)).region_code == "110228"


@pytest.mark.parametrize(
    "text",
    [
        WOMAN_1949[:-1],  # 17 characters
        WOMAN_1949 + "1",  # 19 characters
        "",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width
        "11010519491231002Y",
        "1101051949123100X2",  # X only as the check character
        "11010519491231 02X",
        "110105-19491231-002X",
    ],
)
def test_malformed_numbers_are_rejected(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        IdNumber.parse(text)
    assert caught.value.field == "id_number"


@pytest.mark.parametrize("value", [11010519491231002, None, b"11010519491231002X"])
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidValue):
        IdNumber.parse(value)  # type: ignore[arg-type]


def test_masking_keeps_the_region_and_the_last_four_characters() -> None:
    number = IdNumber.parse(WOMAN_1949)
    assert number.masked() == "110105********002X"
    assert str(number) == "110105********002X"
    assert mask_id_number(WOMAN_1949) == "110105********002X"


@settings(deadline=None)
@given(VALID_NUMBERS)
def test_repr_and_str_never_show_the_whole_number_or_the_birth_date(number: str) -> None:
    parsed = IdNumber.parse(number)
    for shown in (repr(parsed), str(parsed), f"{parsed}", repr([parsed])):
        assert number not in shown
        assert number[6:14] not in shown


# --- CreditCode ----------------------------------------------------------------------------


def test_union_and_employer_codes_parse() -> None:
    base = CreditCode.parse(union_code("110105", 7, base=True))
    other = CreditCode.parse(union_code("110105", 8, base=False))
    employer = CreditCode.parse(employer_code("110105", 9))
    assert (base.is_union, base.is_base_union) == (True, True)
    assert (other.is_union, other.is_base_union) == (True, False)
    assert (employer.is_union, employer.is_base_union) == (False, False)
    assert base.division_code == "110105"
    assert str(base) == base.value


def test_a_lowercase_credit_code_is_normalised() -> None:
    code = employer_code("110105", 31 * 31 * 12)  # a serial that puts letters in the code
    assert any(c.isalpha() for c in code[8:17])
    assert CreditCode.parse(code.lower()).value == code


def test_a_wrong_check_character_is_rejected_in_a_credit_code() -> None:
    code = union_code("110105", 42, base=True)
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    with pytest.raises(InvalidValue) as caught:
        CreditCode.parse(wrong)
    assert caught.value.field == "code"


@settings(deadline=None)
@given(
    st.integers(min_value=0, max_value=31**9 - 1),
    st.integers(min_value=0, max_value=16),
    st.integers(min_value=0, max_value=30),
)
def test_any_single_character_changed_fails_the_credit_code_check(
    serial: int, position: int, new_index: int
) -> None:
    code = union_code("110105", serial, base=True)
    alphabet = "0123456789" if position < 8 else USCC_ALPHABET
    replacement = alphabet[new_index % len(alphabet)]
    assume(replacement != code[position])
    tampered = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(InvalidValue):
        CreditCode.parse(tampered)


@pytest.mark.parametrize("letter", ["I", "O", "S", "V", "Z"])
def test_letters_outside_the_gb32100_alphabet_are_rejected(letter: str) -> None:
    body = "81110105" + letter + "1234567"
    for check in USCC_ALPHABET:
        with pytest.raises(InvalidValue):
            CreditCode.parse(body + "8" + check)


def test_letters_in_the_first_eight_characters_are_rejected() -> None:
    body = "8A110105" + "123456789"
    with pytest.raises(InvalidValue):
        CreditCode.parse(body + "0")


@pytest.mark.parametrize("length", [0, 15, 17, 19, 20])
def test_a_credit_code_has_eighteen_characters(length: int) -> None:
    text = (union_code("110105", 5, base=True) * 2)[:length]
    with pytest.raises(InvalidValue, match="18 characters"):
        CreditCode.parse(text)


def test_stdnum_and_the_domain_agree_on_synthetic_codes() -> None:
    for serial in range(0, 31**3, 97):
        code = union_code("320505", serial, base=serial % 2 == 0)
        assert uscc.is_valid(code)
        assert CreditCode.parse(code).value == code


# --- region codes and mobiles -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        ("110105", (6,)),
        ("110118", (6,)),
        ("11", (2, 4, 6)),
        ("1101", (2, 4, 6)),
        ("440305", (2, 4, 6)),
    ],
)
def test_parse_region_code_accepts_known_codes_and_prefixes(
    text: str, lengths: tuple[int, ...]
) -> None:
    assert parse_region_code(text, lengths=lengths) == text


@pytest.mark.parametrize(
    ("text", "lengths"),
    [
        ("11", (6,)),  # a prefix where a whole code is needed
        ("11010", (2, 4, 6)),
        ("991234", (6,)),  # no such province
        ("99", (2, 4, 6)),
        ("119999", (6,)),  # no such county
        ("11010a", (6,)),
        ("１１０１０５", (6,)),  # full-width digits
        ("", (6,)),
        (" 110105", (6,)),
        (110105, (6,)),
    ],
)
def test_parse_region_code_rejects_unknown_or_malformed_codes(
    text: object, lengths: tuple[int, ...]
) -> None:
    with pytest.raises(InvalidValue):
        parse_region_code(text, lengths=lengths)  # type: ignore[arg-type]


def test_parse_mobile_accepts_mainland_numbers_and_none() -> None:
    assert parse_mobile("13812345678") == "13812345678"
    assert parse_mobile(" 19912345678 ") == "19912345678"
    assert parse_mobile(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "12812345678",  # 12x is not a mobile prefix
        "10812345678",
        "1381234567",
        "138123456789",
        "+8613812345678",
        "138-1234-5678",
        "１３８１２３４５６７８",
        "",
        13812345678,
    ],
)
def test_parse_mobile_rejects_other_numbers(text: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        parse_mobile(text)  # type: ignore[arg-type]
    assert caught.value.field == "mobile"


def test_mask_mobile_hides_the_middle_four_digits() -> None:
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile(None) is None


def test_made_up_region_codes_do_not_grow_the_division_cache() -> None:
    """Numbers whose region codes exist nowhere are refused, and however many of them arrive,
    the cache of known codes stays bounded."""
    from domain.identity import DIVISION_CACHE, _known_division

    for n in range(DIVISION_CACHE + 2_000):
        body = f"{11 + n // 10_000:02d}{n % 10_000:04d}19800101001"
        try:
            IdNumber.parse(body + ric.calc_check_digit(body + "0"))
        except InvalidValue:
            pass
    assert _known_division.cache_info().currsize <= DIVISION_CACHE
    assert parse_region_code("110105") == "110105"  # the real ones still answer
