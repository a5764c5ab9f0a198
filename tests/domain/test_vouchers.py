"""Vouchers (记账凭证) and books (账簿): balance when built and when read back, posting rules."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import pytest

from domain.errors import (
    AlreadyExists,
    AlreadyReversed,
    InsufficientFunds,
    PeriodClosed,
    PeriodOutOfOrder,
    RemittanceExceedsOwed,
    UnbalancedVoucher,
)
from domain.funds import levy_postings, remittance_postings
from domain.levy import LevyShare
from domain.money import Money
from domain.period import Month
from domain.vouchers import Book, Posting, Voucher, check_balanced, credit, debit

DAY = datetime.date(2024, 3, 15)
TODAY = datetime.date(2026, 12, 3)


def voucher(postings: list[Posting], kind: str = "dues", reverses: str | None = None) -> Voucher:
    return Voucher(
        id=uuid.uuid4(),
        kind=kind,
        effective_on=DAY,
        postings=postings,
        details={},
        reverses=reverses,
    )


def dues(org: str = "A", fen: int = 10_000) -> list[Posting]:
    return [debit(org, "102", Money(fen)), credit(org, "401", Money(fen))]


def reversal_of(original: Voucher) -> Voucher:
    return voucher(
        [p.red_ink() for p in original.postings], kind="reversal", reverses=str(original.id)
    )


def test_a_reversal_repeats_the_postings_on_the_same_sides_in_red_ink() -> None:
    """红字冲销: Dr 102 -80.00, Cr 401 -80.00; the turnover columns net to nothing."""
    original = voucher([debit("A", "102", Money(8000)), credit("A", "401", Money(8000))])
    reversal = reversal_of(original)
    assert [(p.account_code, str(p.debit), str(p.credit)) for p in reversal.postings] == [
        ("102", "-80.00", "0.00"),
        ("401", "0.00", "-80.00"),
    ]
    # One stored with swapped sides (before red ink) reads back as the same red-ink lines.
    old = voucher([p.swapped() for p in original.postings], kind="reversal")
    assert old.postings == reversal.postings
    with pytest.raises(ValueError, match="red-ink"):
        voucher([debit("A", "102", Money(-5)), credit("A", "401", Money(-5))])
    book = Book(organization_code="A")
    book.record("v", DAY, original.postings)
    book.record("r", DAY, reversal.postings)
    assert book.balances == {"102": 0, "401": 0}


# --- postings -------------------------------------------------------------------------------


def test_a_posting_is_either_a_debit_or_a_credit_on_a_known_account() -> None:
    with pytest.raises(ValueError):
        Posting("A", "102", Money(1), Money(1))
    with pytest.raises(ValueError):
        Posting("A", "102", Money(0), Money(0))
    with pytest.raises(ValueError):
        Posting("A", "102", Money(-1), Money(-1))
    with pytest.raises(ValueError):
        Posting("A", "999", Money(1), Money(0))
    assert debit("A", "102", Money(5)).signed_fen == 5
    assert credit("A", "102", Money(5)).signed_fen == -5
    assert debit("A", "102", Money(5)).swapped() == credit("A", "102", Money(5))


# --- balance when built ------------------------------------------------------------------------


def test_a_balanced_voucher_is_built() -> None:
    v = voucher(dues())
    assert v.organization_codes == ["A"]
    assert v.reversed_by is None


@pytest.mark.parametrize(
    "postings",
    [
        [debit("A", "102", Money(100)), credit("A", "401", Money(99))],
        [debit("A", "102", Money(100))],
        [],
        # Debits equal credits in total, but not within each organisation's books.
        [debit("A", "102", Money(100)), credit("B", "401", Money(100))],
    ],
)
def test_an_unbalanced_voucher_cannot_be_built(postings: list[Posting]) -> None:
    with pytest.raises(UnbalancedVoucher):
        voucher(postings)
    with pytest.raises(UnbalancedVoucher):
        check_balanced(postings)


def test_an_unknown_voucher_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        voucher(dues(), kind="gift")


# --- balance when read back ---------------------------------------------------------------------


def test_a_stored_voucher_replays() -> None:
    original = voucher(dues())
    (posted,) = original.collect_events()
    rebuilt = posted.mutate(None)
    assert rebuilt.postings == original.postings
    assert rebuilt.id == original.id


@pytest.mark.parametrize(
    "tampered_postings",
    [
        [debit("A", "102", Money(10_000)), credit("A", "401", Money(1_000))],
        [debit("A", "102", Money(10_000))],
        [debit("A", "102", Money(10_000)), credit("B", "401", Money(10_000))],
        [],
    ],
)
def test_a_tampered_posted_event_is_refused_when_read_back(
    tampered_postings: list[Posting],
) -> None:
    (posted,) = voucher(dues()).collect_events()
    assert isinstance(posted, Voucher.Posted)
    tampered = dataclasses.replace(posted, postings=tampered_postings)
    with pytest.raises(UnbalancedVoucher):
        tampered.mutate(None)


def test_a_tampered_book_entry_is_refused_when_read_back() -> None:
    book = Book(organization_code="A")
    book.record("v1", DAY, dues())
    opened, recorded = book.collect_events()
    state = opened.mutate(None)
    tampered = dataclasses.replace(recorded, postings=[debit("A", "102", Money(10_000))])
    with pytest.raises(UnbalancedVoucher):
        tampered.mutate(state)


# --- reversals (红字冲销) ---------------------------------------------------------------------


def test_a_voucher_is_reversed_at_most_once() -> None:
    original = voucher(dues())
    first = reversal_of(original)
    original.mark_reversed(str(first.id))
    assert original.reversed_by == str(first.id)
    with pytest.raises(AlreadyReversed):
        original.mark_reversed(str(reversal_of(original).id))


def test_a_reversal_cannot_be_reversed() -> None:
    original = voucher(dues())
    reversal = reversal_of(original)
    with pytest.raises(AlreadyReversed):
        reversal.mark_reversed(str(uuid.uuid4()))


def test_check_reversible_refuses_before_any_reversal_is_built() -> None:
    original = voucher(dues())
    original.check_reversible()
    with pytest.raises(AlreadyReversed):
        reversal_of(original).check_reversible()
    original.mark_reversed(str(uuid.uuid4()))
    with pytest.raises(AlreadyReversed):
        original.check_reversible()


def test_a_reversal_cancels_the_original_in_the_books() -> None:
    original = voucher(dues())
    book = Book(organization_code="A")
    book.record(str(original.id), DAY, original.postings)
    reversal = reversal_of(original)
    book.record(str(reversal.id), DAY, reversal.postings)
    assert book.bank_balance() == Money(0)
    assert book.balance("401") == Money(0)


# --- the books' rules --------------------------------------------------------------------------


def funded_book(fen: int = 10_000) -> Book:
    book = Book(organization_code="A")
    book.record("v-dues", DAY, dues(fen=fen))
    return book


def test_a_payout_may_empty_the_bank_but_not_overdraw_it() -> None:
    book = funded_book(10_000)
    with pytest.raises(InsufficientFunds):
        book.check_can_post(
            [debit("A", "50404", Money(10_001)), credit("A", "102", Money(10_001))], DAY
        )
    book.record(
        "v-aid", DAY, [debit("A", "50404", Money(10_000)), credit("A", "102", Money(10_000))]
    )
    assert book.bank_balance() == Money(0)
    with pytest.raises(InsufficientFunds):
        book.record("v-more", DAY, [debit("A", "510", Money(1)), credit("A", "102", Money(1))])
    assert book.bank_balance() == Money(0)


def levy_book() -> Book:
    """County K received a levy: it owes city C 300 fen and national 200 fen (211)."""
    book = Book(organization_code="K")
    shares = [
        LevyShare(2, "K", Money(500)),
        LevyShare(3, "C", Money(300)),
        LevyShare(5, "national", Money(200)),
    ]
    book.record("v-levy", DAY, levy_postings("K", 2, shares))
    return book


def test_the_books_know_what_is_owed_to_each_counterparty() -> None:
    book = levy_book()
    assert book.owed("211") == {"C": Money(300), "national": Money(200)}
    assert book.bank_balance() == Money(1000)


def test_a_remittance_above_what_is_owed_to_a_counterparty_is_refused() -> None:
    book = levy_book()
    # 250 fen is less than the 500 owed in all, but more than the 200 owed to national.
    too_much = remittance_postings("K", "P", [("national", Money(250))], upward=True)
    with pytest.raises(RemittanceExceedsOwed, match="national"):
        book.record("v-rem", DAY, too_much)
    exact = remittance_postings(
        "K", "P", [("national", Money(200)), ("C", Money(100))], upward=True
    )
    book.record("v-rem", DAY, exact)
    assert book.owed("211") == {"C": Money(200)}
    with pytest.raises(RemittanceExceedsOwed):
        book.record(
            "v-rem2", DAY, remittance_postings("K", "P", [("national", Money(1))], upward=True)
        )


def expense(fen: int, org: str = "A") -> list[Posting]:
    return [debit(org, "501", Money(fen)), credit(org, "102", Money(fen))]


def test_a_back_dated_payout_meets_the_balance_of_its_own_date() -> None:
    """Dues of 100.00 on 10 March, then an expense of 100.00 dated 1 March: refused."""
    book = Book(organization_code="A")
    book.record("v-dues", datetime.date(2024, 3, 10), dues(fen=10_000))
    with pytest.raises(InsufficientFunds, match="2024-03-01"):
        book.record("v-early", datetime.date(2024, 3, 1), expense(10_000))
    book.record("v-same-day", datetime.date(2024, 3, 10), expense(6_000))
    assert book.bank_balance() == Money(4_000)


def test_a_back_dated_payout_must_leave_every_later_balance_positive() -> None:
    """The balance on its date suffices, but a later payout would then overdraw: refused."""
    book = Book(organization_code="A")
    book.record("v-dues", datetime.date(2024, 3, 1), dues(fen=10_000))
    book.record("v-late", datetime.date(2024, 3, 20), expense(8_000))
    with pytest.raises(InsufficientFunds, match="2024-03-20"):
        book.record("v-back", datetime.date(2024, 3, 5), expense(3_000))
    book.record("v-back", datetime.date(2024, 3, 5), expense(2_000))
    # Money arriving before a payout may always be recorded, back-dated or not.
    book.record("v-more", datetime.date(2024, 2, 1), dues(fen=1))
    assert book.bank_balance() == Money(1)


def test_a_back_dated_remittance_meets_what_was_owed_on_its_date() -> None:
    """A levy on 15 March leaves K owing C 300 fen; a remittance dated 14 March is refused."""
    book = levy_book()
    book.record("v-cash", datetime.date(2024, 3, 1), dues(org="K", fen=1_000))
    early = remittance_postings("K", "C", [("C", Money(300))], upward=True)
    with pytest.raises(RemittanceExceedsOwed, match="2024-03-14"):
        book.record("v-rem", datetime.date(2024, 3, 14), early)
    assert book.owed("211", on=datetime.date(2024, 3, 14)) == {}
    assert book.owed("211", on=DAY) == {"C": Money(300), "national": Money(200)}
    book.record("v-rem", DAY, early)
    assert book.owed("211") == {"national": Money(200)}


def test_a_closed_month_takes_no_postings_dated_inside_it() -> None:
    book = funded_book()
    book.close_month(Month(2024, 3), TODAY)
    assert book.is_closed(Month(2024, 3))
    for day in (datetime.date(2024, 3, 1), DAY, datetime.date(2024, 3, 31)):
        with pytest.raises(PeriodClosed):
            book.record("v-late", day, dues())
    book.record("v-april", datetime.date(2024, 4, 1), dues())
    # Nothing in or before the last closed month: February would change March's opening.
    with pytest.raises(PeriodClosed):
        book.record("v-feb", datetime.date(2024, 2, 15), dues())
    with pytest.raises(AlreadyExists):
        book.close_month(Month(2024, 3), TODAY)
    with pytest.raises(AlreadyExists):
        book.close_month(Month(2024, 2), TODAY)


def test_months_close_in_order_and_only_once_ended() -> None:
    book = funded_book()
    with pytest.raises(PeriodOutOfOrder, match="has not ended"):
        book.close_month(Month(2099, 12), TODAY)
    with pytest.raises(PeriodOutOfOrder, match="has not ended"):
        book.close_month(Month(2026, 12), TODAY)
    book.close_month(Month(2024, 3), TODAY)
    with pytest.raises(PeriodOutOfOrder, match="2024-04"):
        book.close_month(Month(2024, 5), TODAY)
    book.close_month(Month(2024, 4), TODAY)
    assert book.last_closed == Month(2024, 4)


def test_only_the_last_closed_month_reopens() -> None:
    book = funded_book()
    with pytest.raises(PeriodOutOfOrder):
        book.reopen_month(Month(2024, 3), "无结账")
    book.close_month(Month(2024, 3), TODAY)
    book.close_month(Month(2024, 4), TODAY)
    with pytest.raises(PeriodOutOfOrder, match="2024-04"):
        book.reopen_month(Month(2024, 3), "补记")
    book.reopen_month(Month(2024, 4), "补记一笔支出")
    assert book.last_closed == Month(2024, 3)
    book.record("v-april", datetime.date(2024, 4, 30), dues())
    with pytest.raises(PeriodClosed):
        book.record("v-march", datetime.date(2024, 3, 31), dues())
    assert [(e["action"], e["period"], e["reason"]) for e in book.period_log] == [
        ("close", "2024-03", None),
        ("close", "2024-04", None),
        ("reopen", "2024-04", "补记一笔支出"),
    ]


def test_a_book_records_only_its_own_organizations_lines() -> None:
    postings = remittance_postings("K", "P", [("P", Money(100))], upward=True)
    receiver = Book(organization_code="P")
    receiver.record("v", DAY, postings)
    assert receiver.bank_balance() == Money(100)
    assert receiver.balance("402") == Money(-100)
    assert receiver.balance("211") == Money(0)


def test_replaying_a_book_rebuilds_its_balances() -> None:
    book = levy_book()
    book.record("v-rem", DAY, remittance_postings("K", "P", [("C", Money(300))], upward=True))
    book.close_month(Month(2024, 3), TODAY)
    state = {k: v for k, v in vars(book).items() if k != "_pending_events"}
    rebuilt = None
    for event in book.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert {k: v for k, v in vars(rebuilt).items() if k != "_pending_events"} == state


def test_vouchers_are_numbered_per_month_in_order_of_recording() -> None:
    """记字号: gapless per accounting month; a back-dated voucher takes its own month's next."""
    book = Book(organization_code="A")
    march, april = datetime.date(2024, 3, 10), datetime.date(2024, 4, 2)
    assert book.record("v1", march, dues()) == "记-2024-03-0001"
    assert book.record("v2", april, dues()) == "记-2024-04-0001"
    assert book.record("v3", march, dues()) == "记-2024-03-0002"
    with pytest.raises(InsufficientFunds):
        book.record("v4", march, expense(10**9))
    assert book.record("v5", march, dues()) == "记-2024-03-0003"  # a refusal takes no number
    rebuilt = None
    for event in book.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert rebuilt.voucher_counts == {"2024-03": 3, "2024-04": 1}
