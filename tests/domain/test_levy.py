"""Levy sharing (工会经费分成): policies, paths, largest-remainder rounding, partial remittances."""

from __future__ import annotations

import datetime
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import AlreadyExists, InvalidValue, NoLevyPolicy
from domain.funds import levy_postings
from domain.levy import (
    SHARE_LEVELS,
    LevyPolicy,
    divide_owed,
    format_percent,
    largest_remainder,
    level_rank,
    levy_due,
    parse_shares,
    select_policy,
    share_levy,
)
from domain.money import Money
from domain.policies import LevyPolicies
from domain.vouchers import check_balanced

ABOVE_BASE = ("township", "county", "city", "province", "national")
CODE = {level: f"code-{level}" for level in (*SHARE_LEVELS, "joint_base")}


def policy_shares(**percent: str) -> dict[str, Fraction]:
    return parse_shares({level: percent.get(level, "0") for level in SHARE_LEVELS})


COMMON = policy_shares(base="60", township="5", county="15", city="10", province="5", national="5")


@st.composite
def share_policies(draw: st.DrawFn) -> dict[str, Fraction]:
    """Six percentages with at most two decimals that add up to exactly 100."""
    cuts = sorted(draw(st.lists(st.integers(0, 10_000), min_size=5, max_size=5)))
    bounds = [0, *cuts, 10_000]
    hundredths = [bounds[i + 1] - bounds[i] for i in range(6)]
    order = draw(st.permutations(range(6)))
    return {SHARE_LEVELS[i]: Fraction(hundredths[order[i]], 100) for i in range(6)}


@st.composite
def paths(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A base union and any subset of the levels above it; the highest is the root."""
    base_level = draw(st.sampled_from(["base", "joint_base"]))
    above = draw(st.lists(st.sampled_from(ABOVE_BASE), unique=True))
    levels = [base_level, *sorted(above, key=level_rank)]
    return [(level, CODE[level]) for level in levels]


def exact_shares(
    amount_fen: int, shares: dict[str, Fraction], path: list[tuple[str, str]]
) -> dict[str, Fraction]:
    """The spec, written out: missing levels below the root join the next level up that is on
    the path; levels above the root stay owed to the level by name."""
    present = {level_rank(level): code for level, code in path}
    root = max(present)
    exact: dict[str, Fraction] = {}
    for rank, level in enumerate(SHARE_LEVELS):
        if rank > root:
            owner = level
        else:
            owner = present[min(r for r in present if r >= rank)]
        exact[owner] = exact.get(owner, Fraction(0)) + amount_fen * shares[level] / 100
    return exact


# --- share_levy --------------------------------------------------------------------------------


@settings(deadline=None, max_examples=400)
@given(st.integers(0, 10**12), share_policies(), paths())
def test_shares_add_up_exactly_and_each_is_within_a_fen_of_its_exact_value(
    amount_fen: int, shares: dict[str, Fraction], path: list[tuple[str, str]]
) -> None:
    result = share_levy(Money(amount_fen), shares, path)
    assert sum(s.amount.fen for s in result) == amount_fen
    assert all(s.amount.fen > 0 for s in result)
    counterparties = [s.counterparty for s in result]
    assert len(counterparties) == len(set(counterparties))
    assert [s.rank for s in result] == sorted(s.rank for s in result)
    got = {s.counterparty: s.amount.fen for s in result}
    exact = exact_shares(amount_fen, shares, path)
    assert set(got) <= set(exact)
    for owner, value in exact.items():
        assert abs(got.get(owner, 0) - value) < 1, (owner, got, exact)


@settings(deadline=None, max_examples=200)
@given(st.integers(1, 10**12), share_policies(), paths())
def test_levels_above_the_root_are_owed_by_name_and_others_by_code(
    amount_fen: int, shares: dict[str, Fraction], path: list[tuple[str, str]]
) -> None:
    present = {level_rank(level): code for level, code in path}
    root = max(present)
    for share in share_levy(Money(amount_fen), shares, path):
        if share.rank > root:
            assert share.counterparty == SHARE_LEVELS[share.rank] == share.level
        else:
            assert share.counterparty == present[share.rank]


def test_the_worked_example_holds_to_the_fen() -> None:
    # docs/domain.md, the worked example: root a province, base union directly under a county
    # (no township).
    path = [("base", "B"), ("county", "K"), ("city", "C"), ("province", "P")]
    result = share_levy(Money.parse("2469.14"), COMMON, path)
    assert [(s.level, s.counterparty, str(s.amount)) for s in result] == [
        ("base", "B", "1481.48"),
        ("county", "K", "493.83"),
        ("city", "C", "246.91"),
        ("province", "P", "123.46"),
        ("national", "national", "123.46"),
    ]
    # The floors leave 3 fen; they go to the largest remainders: county .8, province and
    # national .7 each, not to base or city (.4).
    floors = {"B": 148148, "K": 49382, "C": 24691, "P": 12345, "national": 12345}
    extra = {s.counterparty: s.amount.fen - floors[s.counterparty] for s in result}
    assert extra == {"B": 0, "K": 1, "C": 0, "P": 1, "national": 1}


def test_the_worked_example_as_the_county_books_it() -> None:
    path = [("base", "B"), ("county", "K"), ("city", "C"), ("province", "P")]
    shares = share_levy(Money.parse("2469.14"), COMMON, path)
    postings = levy_postings("K", level_rank("county"), shares)
    lines = [(p.account_code, p.counterparty, str(p.debit), str(p.credit)) for p in postings]
    assert lines == [
        ("102", None, "2469.14", "0.00"),
        ("212", "B", "0.00", "1481.48"),
        ("402", None, "0.00", "493.83"),
        ("211", "C", "0.00", "246.91"),
        ("211", "P", "0.00", "123.46"),
        ("211", "national", "0.00", "123.46"),
    ]
    assert {p.organization_code for p in postings} == {"K"}
    check_balanced(postings)


def test_a_rounding_tie_goes_to_the_lower_level() -> None:
    halves = policy_shares(county="50", city="50")
    path = [("base", "B"), ("county", "K"), ("city", "C")]
    assert [(s.counterparty, s.amount.fen) for s in share_levy(Money(1), halves, path)] == [
        ("K", 1)
    ]
    # Same between a level on the path (the root) and one above it, owed by name.
    top = policy_shares(province="50", national="50")
    path = [("base", "B"), ("province", "P")]
    assert [(s.counterparty, s.amount.fen) for s in share_levy(Money(3), top, path)] == [
        ("P", 2),
        ("national", 1),
    ]
    # Three equal remainders of 1/4 fen-ish: lowest two levels get the two spare fen.
    quarters = policy_shares(base="25", county="25", city="25", province="25")
    path = [("base", "B"), ("county", "K"), ("city", "C"), ("province", "P")]
    assert [s.amount.fen for s in share_levy(Money(6), quarters, path)] == [2, 2, 1, 1]


def test_missing_levels_below_the_root_join_the_next_level_up() -> None:
    # No township, no county: both percentages go to the city, the root here.
    path = [("base", "B"), ("city", "C")]
    result = share_levy(Money(100_000), COMMON, path)
    assert [(s.counterparty, s.amount.fen) for s in result] == [
        ("B", 60_000),
        ("C", 30_000),
        ("province", 5_000),
        ("national", 5_000),
    ]


def test_a_base_union_that_is_the_root_owes_every_other_level_by_name() -> None:
    result = share_levy(Money(100_000), COMMON, [("joint_base", "J")])
    assert [(s.counterparty, s.amount.fen) for s in result] == [
        ("J", 60_000),
        ("township", 5_000),
        ("county", 15_000),
        ("city", 10_000),
        ("province", 5_000),
        ("national", 5_000),
    ]


def test_zero_shares_are_left_out() -> None:
    shares = policy_shares(base="100")
    assert [
        (s.counterparty, s.amount.fen) for s in share_levy(Money(5), shares, [("base", "B")])
    ] == [("B", 5)]
    assert share_levy(Money(0), COMMON, [("base", "B"), ("county", "K")]) == []


@pytest.mark.parametrize(
    "path",
    [
        [],
        [("county", "K")],  # does not start at a base union
        [("base", "B"), ("joint_base", "J")],  # two organisations at one level
        [("base", "B"), ("county", "K"), ("county", "K2")],
    ],
)
def test_malformed_paths_are_refused(path: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError):
        share_levy(Money(100), COMMON, path)


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(InvalidValue):
        level_rank("district")


# --- largest_remainder ----------------------------------------------------------------------

WEIGHTS = st.lists(st.integers(0, 10**6), min_size=1, max_size=8).filter(lambda w: sum(w) > 0)


@settings(deadline=None, max_examples=300)
@given(st.integers(0, 10**12), WEIGHTS)
def test_largest_remainder_adds_up_and_stays_within_a_fen(
    amount_fen: int, weights: list[int]
) -> None:
    parts = largest_remainder(amount_fen, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == amount_fen
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(amount_fen * weight, total)
        assert math.floor(exact) <= part <= math.ceil(exact)
        if weight == 0:
            assert part == 0


@settings(deadline=None, max_examples=300)
@given(st.integers(0, 10**12), WEIGHTS)
def test_largest_remainder_never_gives_a_smaller_weight_more(
    amount_fen: int, weights: list[int]
) -> None:
    parts = largest_remainder(amount_fen, weights)
    for i, wi in enumerate(weights):
        for j, wj in enumerate(weights):
            if wi > wj or (wi == wj and i < j):
                assert parts[i] >= parts[j]


@settings(deadline=None)
@given(st.integers(0, 10**9), WEIGHTS, st.integers(1, 1000))
def test_largest_remainder_depends_only_on_the_proportions(
    amount_fen: int, weights: list[int], factor: int
) -> None:
    assert largest_remainder(amount_fen, weights) == largest_remainder(
        amount_fen, [w * factor for w in weights]
    )


def test_largest_remainder_ties_go_to_the_earlier_weight() -> None:
    assert largest_remainder(1, [1, 1]) == [1, 0]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(5, [1, 1, 1]) == [2, 2, 1]


def test_largest_remainder_refuses_negative_amounts_and_empty_weights() -> None:
    with pytest.raises(ValueError):
        largest_remainder(-1, [1])
    with pytest.raises(ValueError):
        largest_remainder(1, [0, 0])
    with pytest.raises(ValueError):
        largest_remainder(1, [])


# --- policies ---------------------------------------------------------------------------------


def policy(prefix: str, effective_from: str, **percent: str) -> LevyPolicy:
    return LevyPolicy(prefix, datetime.date.fromisoformat(effective_from), policy_shares(**percent))


def test_the_longest_matching_prefix_wins() -> None:
    province = policy("11", "2000-01-01", base="60", county="40")
    city = policy("1101", "2000-01-01", base="62", county="38")
    county = policy("110105", "2000-01-01", base="65", county="35")
    policies = [province, city, county]
    start = datetime.date(2024, 1, 1)
    assert select_policy(policies, "110105", start) is county
    assert select_policy(policies, "110108", start) is city
    assert select_policy(policies, "110229", start) is province  # 1102 is not 1101
    assert select_policy(policies, "112233", start) is province


def test_a_longer_prefix_wins_even_when_older() -> None:
    old_city = policy("1101", "2000-01-01", base="62", county="38")
    new_province = policy("11", "2023-06-01", base="60", county="40")
    assert select_policy([new_province, old_city], "110105", datetime.date(2024, 1, 1)) is old_city


def test_the_latest_policy_not_after_the_periods_first_day_applies() -> None:
    v2020 = policy("11", "2020-01-01", base="60", county="40")
    v2024 = policy("11", "2024-01-01", base="61", county="39")
    v2024b = policy("11", "2024-01-02", base="70", county="30")
    policies = [v2024b, v2020, v2024]
    assert select_policy(policies, "110105", datetime.date(2023, 12, 1)) is v2020
    assert select_policy(policies, "110105", datetime.date(2024, 1, 1)) is v2024
    assert select_policy(policies, "110105", datetime.date(2024, 2, 1)) is v2024b


def test_a_longer_prefix_not_yet_in_force_does_not_win() -> None:
    future_county = policy("110105", "2025-01-01", base="65", county="35")
    province = policy("11", "2000-01-01", base="60", county="40")
    chosen = select_policy([future_county, province], "110105", datetime.date(2024, 6, 1))
    assert chosen is province


@pytest.mark.parametrize(
    ("policies", "region"),
    [
        ([], "110105"),
        ([policy("12", "2000-01-01", base="100")], "110105"),
        ([policy("11", "2030-01-01", base="100")], "110105"),
        ([policy("0105", "2000-01-01", base="100")], "110105"),  # a prefix matches from the left
    ],
)
def test_no_policy_in_force_is_a_clear_error(policies: list[LevyPolicy], region: str) -> None:
    with pytest.raises(NoLevyPolicy, match=region):
        select_policy(policies, region, datetime.date(2024, 1, 1))


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["11", "12", "1101", "1102", "110105", "110108"]),
            st.dates(datetime.date(2000, 1, 1), datetime.date(2030, 1, 1)),
        ),
        unique=True,
        max_size=12,
    ),
    st.sampled_from(["110105", "110108", "110229", "120101"]),
    st.dates(datetime.date(2000, 1, 1), datetime.date(2030, 1, 1)),
)
def test_select_policy_picks_longest_prefix_then_latest_start(
    keys: list[tuple[str, datetime.date]], region: str, start: datetime.date
) -> None:
    policies = [LevyPolicy(prefix, day, COMMON) for prefix, day in keys]
    applicable = [
        p for p in policies if region.startswith(p.region_prefix) and p.effective_from <= start
    ]
    if not applicable:
        with pytest.raises(NoLevyPolicy):
            select_policy(policies, region, start)
        return
    chosen = select_policy(policies, region, start)
    assert chosen in applicable
    for other in applicable:
        assert len(other.region_prefix) <= len(chosen.region_prefix)
        if len(other.region_prefix) == len(chosen.region_prefix):
            assert other.effective_from <= chosen.effective_from


def test_parse_shares_accepts_decimal_percentages_summing_to_100() -> None:
    shares = parse_shares(
        {
            "base": "60",
            "township": "2.5",
            "county": "12.5",
            "city": "10",
            "province": "7.75",
            "national": "7.25",
        }
    )
    assert sum(shares.values()) == 100
    assert shares["province"] == Fraction(31, 4)


@pytest.mark.parametrize(
    "raw",
    [
        {"base": "60", "township": "5", "county": "15", "city": "10", "province": "5"},
        {
            "base": "60",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": "5",
            "district": "0",
        },
        {
            "base": "60",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": "6",
        },
        {
            "base": "60",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": "5\n",
        },
        {
            "base": "60",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": 5,
        },
        {
            "base": "6e1",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": "5",
        },
        {
            "base": "-10",
            "township": "15",
            "county": "25",
            "city": "40",
            "province": "25",
            "national": "5",
        },
        {
            "base": "60.00001",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": "4.99999",
        },
    ],
)
def test_parse_shares_rejects_bad_policies(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidValue):
        parse_shares(raw)  # type: ignore[arg-type]


@settings(deadline=None)
@given(share_policies())
def test_a_policy_register_stores_shares_exactly(shares: dict[str, Fraction]) -> None:
    # The register keeps percentages as strings; they must come back as the same fractions.
    register = LevyPolicies()
    register.adopt(LevyPolicy("11", datetime.date(2024, 1, 1), shares))
    assert register.in_force("110105", datetime.date(2024, 1, 1)).shares == shares
    assert parse_shares({k: format_percent(v) for k, v in shares.items()}) == shares


def test_a_policy_register_refuses_a_second_policy_with_the_same_key() -> None:
    register = LevyPolicies()
    register.adopt(policy("11", "2024-01-01", base="60", county="40"))
    with pytest.raises(AlreadyExists):
        register.adopt(policy("11", "2024-01-01", base="70", county="30"))
    register.adopt(policy("11", "2024-07-01", base="70", county="30"))
    assert register.in_force("110105", datetime.date(2024, 8, 1)).shares["base"] == 70


# --- partial remittances -----------------------------------------------------------------------


@st.composite
def owed_lists(draw: st.DrawFn) -> list[tuple[int, str, Money]]:
    ranks = draw(st.lists(st.integers(1, 5), min_size=1, max_size=5, unique=True))
    return [(rank, f"cp-{rank}", Money(draw(st.integers(1, 10**11)))) for rank in ranks]


@settings(deadline=None, max_examples=300)
@given(owed_lists(), st.data())
def test_a_partial_remittance_is_divided_in_proportion_and_adds_up(
    owed: list[tuple[int, str, Money]], data: st.DataObject
) -> None:
    total = sum(m.fen for _, _, m in owed)
    amount = data.draw(st.integers(0, total))
    parts = dict((c, m.fen) for c, m in divide_owed(Money(amount), owed))
    assert sum(parts.values()) == amount
    assert all(fen > 0 for fen in parts.values())
    for _, counterparty, balance in owed:
        exact = Fraction(amount * balance.fen, total)
        assert abs(parts.get(counterparty, 0) - exact) < 1
        assert parts.get(counterparty, 0) <= balance.fen


@settings(deadline=None)
@given(owed_lists())
def test_remitting_everything_owed_clears_every_counterparty(
    owed: list[tuple[int, str, Money]],
) -> None:
    total = sum(m.fen for _, _, m in owed)
    parts = dict(divide_owed(Money(total), owed))
    assert parts == {c: m for _, c, m in owed}


@settings(deadline=None)
@given(owed_lists(), st.integers(1, 10**6))
def test_remitting_more_than_is_owed_is_refused(
    owed: list[tuple[int, str, Money]], excess: int
) -> None:
    total = sum(m.fen for _, _, m in owed)
    with pytest.raises(ValueError, match="more than is owed"):
        divide_owed(Money(total + excess), owed)


def test_a_remittance_tie_goes_to_the_lower_level() -> None:
    owed = [(5, "national", Money(100)), (4, "P", Money(100))]
    assert divide_owed(Money(1), owed) == [("P", Money(1))]
    assert divide_owed(Money(3), owed) == [("P", Money(2)), ("national", Money(1))]


# --- levy due -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payroll", "levy"),
    [
        ("100000.00", "2000.00"),
        ("25.00", "0.50"),
        ("0.25", "0.01"),  # 0.005 rounds up
        ("0.24", "0.00"),
        ("0.75", "0.02"),
        ("1.25", "0.03"),  # 0.025: half-up gives 0.03 where half-even would give 0.02
        ("123456.78", "2469.14"),
        ("0.00", "0.00"),
    ],
)
def test_levy_due_is_two_percent_of_payroll_half_up(payroll: str, levy: str) -> None:
    assert levy_due(Money.parse(payroll)) == Money.parse(levy)


@settings(deadline=None, max_examples=300)
@given(st.integers(0, 10**15))
def test_levy_due_is_two_percent_half_up_for_every_payroll(payroll_fen: int) -> None:
    # 2% of payroll_fen fen is payroll_fen / 50 fen; half-up to the fen.
    assert levy_due(Money(payroll_fen)).fen == (payroll_fen + 25) // 50
