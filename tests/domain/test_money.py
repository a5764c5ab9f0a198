"""Money: integer fen, exact decimal strings on the wire, never a float."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.money import MAX_FEN, Money, total

FEN = st.integers(min_value=-(MAX_FEN - 1), max_value=MAX_FEN - 1)


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1234.5", 123450),
        ("1234.50", 123450),
        ("0.01", 1),
        ("0.1", 10),
        ("0", 0),
        ("0.00", 0),
        ("1234", 123400),
        ("99999999999999.99", MAX_FEN - 1),
        ("-12.34", -1234),
    ],
)
def test_parse_accepts_decimal_strings_with_at_most_two_decimals(text: str, fen: int) -> None:
    assert Money.parse(text) == Money(fen)


@pytest.mark.parametrize("value", [1234.5, 1234.50, 0.01, 1234, 0, True, Decimal("1.00"), None])
def test_parse_rejects_floats_ints_and_other_non_strings(value: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        Money.parse(value)  # type: ignore[arg-type]
    assert caught.value.field == "amount"


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "1E3",
        "1.5e2",
        "1.234",
        "0.001",
        "１２３",  # full-width digits
        "١٢٣",  # Arabic-Indic digits
        "+1.00",
        "+0",
        " 1.00",
        "1.00 ",
        "1 000.00",
        "1,000.00",
        "1,000",
        "1_000",
        "",
        ".",
        "1.",
        ".50",
        "01.00",
        "00",
        "--1",
        "1.00\n",
        "NaN",
        "Infinity",
        "0x10",
        "¥1.00",
    ],
)
def test_parse_rejects_malformed_amounts(text: str) -> None:
    with pytest.raises(InvalidValue):
        Money.parse(text)


@pytest.mark.parametrize(
    "text", ["100000000000000.00", "9999999999999999.99", "10000000000000000", "1" + "0" * 40]
)
def test_parse_rejects_huge_amounts_naming_the_callers_field(text: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        Money.parse(text, field="wage")
    assert caught.value.field == "wage"


@pytest.mark.parametrize("fen", [MAX_FEN, -MAX_FEN, 10**30])
def test_constructor_rejects_amounts_at_or_above_the_limit(fen: int) -> None:
    with pytest.raises(InvalidValue):
        Money(fen)


@pytest.mark.parametrize("fen", [1.0, 0.5, Decimal(1), Fraction(1), True, "1"])
def test_constructor_takes_only_int_fen(fen: object) -> None:
    with pytest.raises(TypeError):
        Money(fen)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00"), (5, "0.05"), (50, "0.50"), (123450, "1234.50"), (-5, "-0.05"), (-100, "-1.00")],
)
def test_str_writes_exactly_two_decimals(fen: int, text: str) -> None:
    assert str(Money(fen)) == text


@settings(deadline=None, max_examples=300)
@given(FEN)
def test_formatting_round_trips_for_every_amount(fen: int) -> None:
    assert Money.parse(str(Money(fen))) == Money(fen)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=MAX_FEN - 1))
def test_one_decimal_and_two_decimals_parse_alike(fen: int) -> None:
    whole, cents = divmod(fen, 100)
    if cents % 10 == 0:
        assert Money.parse(f"{whole}.{cents // 10}") == Money(fen)
    assert Money.parse(f"{whole}.{cents:02d}") == Money(fen)


@pytest.mark.parametrize("text", ["0", "0.00", "-0.01", "-5"])
def test_parse_positive_refuses_zero_and_negatives(text: str) -> None:
    with pytest.raises(InvalidValue):
        Money.parse_positive(text)


def test_arithmetic_and_total_stay_in_fen() -> None:
    assert Money(150) + Money(275) == Money(425)
    assert Money(150) - Money(275) == Money(-125)
    assert -Money(3) == Money(-3)
    assert total([Money(1), Money(2), Money(3)]) == Money(6)
    assert total([]) == Money.zero()
    assert Money.zero().is_zero()


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [
        (Decimal("0.005"), 1),  # exactly half a fen rounds up
        (Decimal("0.0049"), 0),
        (Decimal("0.015"), 2),
        (Decimal("0.025"), 3),  # half-even would give 2
        (Decimal("0.035"), 4),
        (Decimal("-0.025"), -3),  # half away from zero (四舍五入)
        (Decimal("-0.0049"), 0),
        (Decimal("1234.565"), 123457),
        (Fraction(1, 200), 1),
        (Fraction(1, 3), 33),
        (Fraction(2, 3), 67),
        # Below a half by less than the Decimal context's 28 digits can see.
        (Fraction(1, 200) - Fraction(1, 10**40), 0),
        (Decimal("0.00499999999999999999999999999999"), 0),
        (Fraction(1, 200) + Fraction(1, 10**40), 1),
    ],
)
def test_from_decimal_half_up_rounds_half_away_from_zero(
    yuan: Decimal | Fraction, fen: int
) -> None:
    assert Money.from_decimal_half_up(yuan) == Money(fen)


@settings(deadline=None, max_examples=300)
@given(
    st.integers(min_value=-(10**13), max_value=10**13),
    st.integers(min_value=1, max_value=10**6),
)
def test_from_decimal_half_up_is_the_nearest_fen_halves_away_from_zero(
    numerator: int, denominator: int
) -> None:
    yuan = Fraction(numerator, denominator)
    fen = Money.from_decimal_half_up(yuan).fen
    exact_fen = yuan * 100
    assert abs(fen - exact_fen) <= Fraction(1, 2)
    if abs(fen - exact_fen) == Fraction(1, 2):
        assert abs(fen) > abs(exact_fen)
