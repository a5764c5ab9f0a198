"""Posting builders (会计分录): every one balances within each organisation's books."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.accounts import PROGRAMME_ACCOUNTS, expense_account
from domain.funds import (
    dues_for_wage,
    dues_postings,
    expense_postings,
    founding_reserve_postings,
    levy_postings,
    person_subsidy_postings,
    remittance_postings,
    union_subsidy_postings,
)
from domain.levy import SHARE_LEVELS, level_rank, share_levy
from domain.money import MAX_FEN, Money
from domain.vouchers import Posting, check_balanced

AMOUNTS = st.integers(min_value=1, max_value=10**13).map(Money)
EXPENSE_ACCOUNTS = ["501", "503", "50302", "504", "50404", "50405", "505", "50503", "510"]


def per_org_sums(postings: list[Posting]) -> dict[str, int]:
    sums: dict[str, int] = defaultdict(int)
    for p in postings:
        sums[p.organization_code] += p.signed_fen
    return dict(sums)


def assert_balanced_per_org(postings: list[Posting]) -> None:
    check_balanced(postings)
    assert set(per_org_sums(postings).values()) == {0}


@settings(deadline=None)
@given(AMOUNTS)
def test_dues_postings_balance(amount: Money) -> None:
    postings = dues_postings("A", amount)
    assert_balanced_per_org(postings)
    assert [(p.account_code, p.signed_fen) for p in postings] == [
        ("102", amount.fen),
        ("401", -amount.fen),
    ]


@settings(deadline=None, max_examples=200)
@given(
    st.integers(min_value=1, max_value=10**12),
    st.lists(st.sampled_from(["township", "county", "city", "province", "national"]), unique=True),
    st.data(),
)
def test_levy_postings_balance_for_any_receiver_on_the_path(
    amount_fen: int, above: list[str], data: st.DataObject
) -> None:
    shares_pct = {level: Fraction(100, 6) for level in SHARE_LEVELS}
    levels = ["base", *sorted(above, key=level_rank)]
    path = [(level, f"code-{level}") for level in levels]
    shares = share_levy(Money(amount_fen), shares_pct, path)
    receiver_level = data.draw(st.sampled_from(levels))
    receiver, rank = f"code-{receiver_level}", level_rank(receiver_level)
    postings = levy_postings(receiver, rank, shares)
    assert_balanced_per_org(postings)
    assert postings[0].debit == Money(amount_fen)
    for p, share in zip(postings[1:], shares, strict=True):
        expected = "402" if share.rank == rank else ("211" if share.rank > rank else "212")
        assert (p.account_code, p.credit) == (expected, share.amount)
        assert p.counterparty == (None if expected == "402" else share.counterparty)


@settings(deadline=None)
@given(AMOUNTS)
def test_founding_reserve_postings_balance(amount: Money) -> None:
    postings = founding_reserve_postings("K", "employer", amount)
    assert_balanced_per_org(postings)
    assert postings[1].counterparty == "employer" and postings[1].account_code == "215"


@settings(deadline=None, max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["P", "national", "C", "B", "T"]),
            st.integers(min_value=1, max_value=10**12),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    ),
    st.booleans(),
)
def test_remittance_postings_balance_for_payer_and_receiver(
    parts: list[tuple[str, int]], upward: bool
) -> None:
    money_parts = [(c, Money(fen)) for c, fen in parts]
    postings = remittance_postings("K", "P", money_parts, upward=upward)
    assert_balanced_per_org(postings)
    assert set(per_org_sums(postings)) == {"K", "P"}
    payable = "211" if upward else "212"
    for counterparty, amount in money_parts:
        own = counterparty == "P"
        received = [
            p
            for p in postings
            if p.organization_code == "P"
            and p.credit == amount
            and p.account_code == ("402" if own else payable)
        ]
        assert received, (counterparty, postings)


@settings(deadline=None)
@given(AMOUNTS, st.sampled_from(sorted(set(PROGRAMME_ACCOUNTS.values()))), st.booleans())
def test_person_subsidy_postings_balance(amount: Money, account: str, earmarked: bool) -> None:
    postings = person_subsidy_postings("A", account, amount, earmarked)
    assert_balanced_per_org(postings)
    assert all(p.earmarked is earmarked for p in postings)


@settings(deadline=None)
@given(AMOUNTS, st.booleans())
def test_union_subsidy_postings_balance_for_payer_and_recipient(
    amount: Money, earmarked: bool
) -> None:
    postings = union_subsidy_postings("K", "B", amount, earmarked)
    assert_balanced_per_org(postings)
    income = [p.account_code for p in postings if p.organization_code == "B" and p.credit.fen]
    assert income == (["40302"] if earmarked else ["40301"])


@settings(deadline=None)
@given(AMOUNTS, st.sampled_from(EXPENSE_ACCOUNTS), st.booleans())
def test_expense_postings_balance(amount: Money, account: str, earmarked: bool) -> None:
    assert expense_account(account).code == account
    assert_balanced_per_org(expense_postings("A", account, amount, earmarked))


@pytest.mark.parametrize(
    ("wage", "dues"),
    [
        ("1.00", "0.01"),  # 0.005 rounds up
        ("0.99", "0.00"),  # 0.00495
        ("3.00", "0.02"),  # 0.015
        ("5.00", "0.03"),  # 0.025: half-up, not half-even
        ("8000.00", "40.00"),
        ("6543.21", "32.72"),  # 32.71605
    ],
)
def test_dues_are_half_a_percent_of_the_wage_half_up(wage: str, dues: str) -> None:
    assert dues_for_wage(Money.parse(wage)) == Money.parse(dues)


@settings(deadline=None, max_examples=300)
@given(st.integers(min_value=0, max_value=MAX_FEN - 1))
def test_dues_are_half_a_percent_half_up_for_every_wage(wage_fen: int) -> None:
    # 0.5% of wage_fen fen is wage_fen / 200 fen; half-up to the fen.
    assert dues_for_wage(Money(wage_fen)).fen == (wage_fen + 100) // 200
