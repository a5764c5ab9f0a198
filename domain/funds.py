"""The postings each kind of fund movement makes (会计分录). Pure functions, no state."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from domain.accounts import (
    BANK,
    DUES_INCOME,
    EARMARKED_FUNDS,
    GENERAL_FUNDS,
    LEVY_INCOME,
    OTHER_PAYABLE,
    PAYABLE_DOWN,
    PAYABLE_UP,
    SUBSIDY_EARMARKED_INCOME,
    SUBSIDY_GENERAL_INCOME,
    SUBSIDY_TO_LOWER,
)
from domain.levy import LevyShare
from domain.money import Money, total
from domain.vouchers import Posting, credit, debit

DUES_RATE = Decimal("0.005")  # 会费: 0.5% of the member's monthly wage


def dues_for_wage(wage: Money) -> Money:
    """A member's monthly dues, rounded half-up to the fen."""
    return Money.from_decimal_half_up(Decimal(wage.fen) / 100 * DUES_RATE)


def dues_postings(org: str, amount: Money) -> list[Posting]:
    return [debit(org, BANK, amount), credit(org, DUES_INCOME, amount)]


def levy_postings(
    receiver: str,
    receiver_rank: int,
    shares: Sequence[LevyShare],
    *,
    from_account: str = BANK,
    from_counterparty: str | None = None,
) -> list[Posting]:
    """The receiver books the whole levy: its own share as income, the others as payables.

    from_account is 102 for money arriving, or 215 when a held founding reserve is shared out.
    """
    amount = total([s.amount for s in shares])
    postings = [debit(receiver, from_account, amount, counterparty=from_counterparty)]
    for share in shares:
        if share.rank == receiver_rank:
            postings.append(credit(receiver, LEVY_INCOME, share.amount))
        elif share.rank > receiver_rank:
            postings.append(
                credit(receiver, PAYABLE_UP, share.amount, counterparty=share.counterparty)
            )
        else:
            postings.append(
                credit(receiver, PAYABLE_DOWN, share.amount, counterparty=share.counterparty)
            )
    return postings


def founding_reserve_postings(receiver: str, employer: str, amount: Money) -> list[Posting]:
    """建会筹备金: held by the higher union as a payable towards the future union."""
    return [
        debit(receiver, BANK, amount),
        credit(receiver, OTHER_PAYABLE, amount, counterparty=employer),
    ]


def remittance_postings(
    payer: str,
    receiver: str,
    parts: Sequence[tuple[str, Money]],
    *,
    upward: bool,
) -> list[Posting]:
    """Clears the payer's payables towards each counterparty; the receiver keeps its own part
    as levy income and owes the rest onward, towards the same counterparties."""
    payable = PAYABLE_UP if upward else PAYABLE_DOWN
    amount = total([m for _, m in parts])
    postings = [debit(payer, payable, m, counterparty=c) for c, m in parts]
    postings.append(credit(payer, BANK, amount))
    postings.append(debit(receiver, BANK, amount))
    for counterparty, m in parts:
        if counterparty == receiver:
            postings.append(credit(receiver, LEVY_INCOME, m))
        else:
            postings.append(credit(receiver, payable, m, counterparty=counterparty))
    return postings


def person_subsidy_postings(
    payer: str, account: str, amount: Money, earmarked: bool
) -> list[Posting]:
    return [
        debit(payer, account, amount, earmarked=earmarked),
        credit(payer, BANK, amount, earmarked=earmarked),
    ]


def union_subsidy_postings(
    payer: str, recipient: str, amount: Money, earmarked: bool
) -> list[Posting]:
    income = SUBSIDY_EARMARKED_INCOME if earmarked else SUBSIDY_GENERAL_INCOME
    return [
        debit(payer, SUBSIDY_TO_LOWER, amount, earmarked=earmarked),
        credit(payer, BANK, amount, earmarked=earmarked),
        debit(recipient, BANK, amount, earmarked=earmarked),
        credit(recipient, income, amount, earmarked=earmarked),
    ]


def expense_postings(org: str, account: str, amount: Money, earmarked: bool) -> list[Posting]:
    return [
        debit(org, account, amount, earmarked=earmarked),
        credit(org, BANK, amount, earmarked=earmarked),
    ]


def year_end_postings(org: str, results: dict[tuple[str, bool], int]) -> list[Posting]:
    """年终结账: every income and expenditure balance (signed fen, debit positive, by account
    and earmarked flag) is closed out, and what the year left moves into net assets: the
    earmarked part into 321 (工会资金结转), the general part into 322 (工会资金结余)."""
    postings: list[Posting] = []
    net = {True: 0, False: 0}
    for (code, flag), fen in sorted(results.items()):
        if fen > 0:
            postings.append(credit(org, code, Money(fen), earmarked=flag))
        elif fen < 0:
            postings.append(debit(org, code, Money(-fen), earmarked=flag))
        net[flag] += fen
    for flag, fund in ((True, EARMARKED_FUNDS), (False, GENERAL_FUNDS)):
        if net[flag] > 0:
            postings.append(debit(org, fund, Money(net[flag]), earmarked=flag))
        elif net[flag] < 0:
            postings.append(credit(org, fund, Money(-net[flag]), earmarked=flag))
    return postings
