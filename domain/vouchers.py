"""Vouchers (记账凭证), postings, and each organisation's books (账簿).

A voucher may touch several organisations' books; it balances for each of them on its own, so
that every organisation's trial balance balances. Balance is checked when a voucher is built
and again whenever it is read back from the store (the check lives in the event's body).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import event

from domain.accounts import (
    ACCOUNTS,
    BANK,
    COUNTY_LEVEL_ACCOUNTS,
    NON_NEGATIVE_ACCOUNTS,
    PAYABLE_DOWN,
    AccountKind,
)
from domain.base import LedgerAggregate, stable_id, stable_topic, value_type
from domain.errors import (
    AccountNotAtThisLevel,
    AlreadyExists,
    AlreadyReversed,
    BeforeFounding,
    InsufficientFunds,
    PeriodClosed,
    PeriodOutOfOrder,
    RemittanceExceedsOwed,
    UnbalancedVoucher,
)
from domain.levy import level_rank
from domain.money import Money
from domain.period import Month

VOUCHER_KINDS = frozenset(
    {
        "dues",
        "levy",
        "founding_reserve",
        "founding_reserve_release",
        "remittance",
        "subsidy",
        "expense",
        "reversal",
        "year_end",
    }
)


@value_type
@dataclass(frozen=True, slots=True)
class Posting:
    """One line of a voucher: one organisation's account, debited or credited.

    counterparty names who a payable or receivable line is owed to or by (a credit code, or a
    level's name such as "national" for a level outside the deployment).
    """

    organization_code: str
    account_code: str
    debit: Money
    credit: Money
    earmarked: bool = False
    counterparty: str | None = None

    def __post_init__(self) -> None:
        if self.account_code not in ACCOUNTS:
            raise ValueError(f"unknown account {self.account_code}")
        if (self.debit.fen != 0) == (self.credit.fen != 0):
            raise ValueError("a posting is either a debit or a credit")

    @property
    def amount_fen(self) -> int:
        """The posting's amount on its side: negative on a red-ink line (红字)."""
        return self.debit.fen or self.credit.fen

    @property
    def signed_fen(self) -> int:
        """Debit positive, credit negative: the sum over a balanced voucher is zero."""
        return self.debit.fen - self.credit.fen

    def swapped(self) -> Posting:
        """The same line with debit and credit exchanged (how reversals were once stored)."""
        return Posting(
            self.organization_code,
            self.account_code,
            self.credit,
            self.debit,
            self.earmarked,
            self.counterparty,
        )

    def red_ink(self) -> Posting:
        """The reversal line of this posting (红字冲销): the same account, on the same side,
        with the amount negated. Its effect on every balance undoes the original's."""
        return Posting(
            self.organization_code,
            self.account_code,
            -self.debit,
            -self.credit,
            self.earmarked,
            self.counterparty,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization_code": self.organization_code,
            "account_code": self.account_code,
            "debit": self.debit,
            "credit": self.credit,
            "earmarked": self.earmarked,
            "counterparty": self.counterparty,
        }


def debit(
    org: str,
    account: str,
    amount: Money,
    *,
    earmarked: bool = False,
    counterparty: str | None = None,
) -> Posting:
    return Posting(org, account, amount, Money(0), earmarked, counterparty)


def credit(
    org: str,
    account: str,
    amount: Money,
    *,
    earmarked: bool = False,
    counterparty: str | None = None,
) -> Posting:
    return Posting(org, account, Money(0), amount, earmarked, counterparty)


def as_red_ink(postings: Sequence[Posting]) -> list[Posting]:
    """A reversal's postings in red ink (红字冲销: same sides, negative amounts). Reversals
    stored before red ink swapped debit and credit with positive amounts; those read back as
    the red-ink lines with the same effect (debit d becomes credit -d and the other way)."""
    if all(p.amount_fen < 0 for p in postings):
        return list(postings)
    if any(p.amount_fen < 0 for p in postings):
        raise ValueError("a reversal's lines are all red ink or all in the old swapped form")
    return [p.swapped().red_ink() for p in postings]


def check_organization_may_post(
    code: str,
    level: str,
    founded_on: datetime.date,
    effective_on: datetime.date,
    postings: Sequence[Posting],
) -> None:
    """Postings into a union's books: not dated before its founding, and none into an account
    kept only at county level and above (132, 212, 404, 508) by a union below that level."""
    if effective_on < founded_on:
        raise BeforeFounding(
            f"{code} was founded on {founded_on.isoformat()}; nothing is posted into its "
            f"books before that ({effective_on.isoformat()})"
        )
    if level_rank(level) >= level_rank("county"):
        return
    for p in postings:
        account = ACCOUNTS[p.account_code]
        top = account.parent or account.code
        # 212 below county level: the share of a union further down that a township passes
        # on (回拨 through it) is still booked on 212, as the levy sharing rules book it.
        passed_on = top == PAYABLE_DOWN and p.counterparty is not None
        if p.organization_code == code and top in COUNTY_LEVEL_ACCOUNTS and not passed_on:
            raise AccountNotAtThisLevel(
                f"{top} {ACCOUNTS[top].name} is kept at county level and above; {code} is "
                f"a {level} union"
            )


def check_balanced(postings: Sequence[Posting]) -> None:
    """Raises UnbalancedVoucher unless debits equal credits for every organisation."""
    if not postings:
        raise UnbalancedVoucher("a voucher has at least one posting")
    per_org: dict[str, int] = defaultdict(int)
    for p in postings:
        per_org[p.organization_code] += p.signed_fen
    unbalanced = {org: fen for org, fen in per_org.items() if fen != 0}
    if unbalanced:
        detail = ", ".join(f"{org}: {Money(fen)}" for org, fen in unbalanced.items())
        raise UnbalancedVoucher(f"debits differ from credits ({detail})")


@stable_topic("ledger:Voucher")
class Voucher(LedgerAggregate):
    """记账凭证: an immutable set of balanced postings; corrected only by a reversal voucher."""

    @event("Posted", topic="ledger:Voucher.Posted")
    def __init__(
        self,
        id: Any,
        kind: str,
        effective_on: datetime.date,
        postings: list[Posting],
        details: dict[str, Any],
        reverses: str | None,
    ) -> None:
        if kind not in VOUCHER_KINDS:
            raise ValueError(f"unknown voucher kind {kind}")
        check_balanced(postings)
        if kind == "reversal":
            postings = as_red_ink(postings)
        elif any(p.amount_fen < 0 for p in postings):
            raise ValueError("only a reversal voucher has negative (red-ink) amounts")
        self.kind = kind
        self.effective_on = effective_on
        self.postings = list(postings)
        self.details = details
        self.reverses = reverses
        self.reversed_by: str | None = None

    @property
    def organization_codes(self) -> list[str]:
        return sorted({p.organization_code for p in self.postings})

    def check_reversible(self) -> None:
        """Raises AlreadyReversed before any reversal posting is even checked."""
        if self.kind == "reversal":
            raise AlreadyReversed("a reversal voucher cannot itself be reversed")
        if self.reversed_by is not None:
            raise AlreadyReversed(f"voucher {self.id} was already reversed by {self.reversed_by}")

    def mark_reversed(self, reversal_id: str) -> None:
        self.check_reversible()
        self._reversed(reversal_id=reversal_id)

    @event("Reversed", topic="ledger:Voucher.Reversed")
    def _reversed(self, reversal_id: str) -> None:
        self.reversed_by = reversal_id


RESULT_KINDS = frozenset({AccountKind.INCOME, AccountKind.EXPENDITURE})


def voucher_number(month: Month, number: int) -> str:
    """记字号: 记-2026-03-0007."""
    return f"记-{month}-{number:04d}"


def watched_key(posting: Posting) -> str | None:
    """The key a posting moves under the dated balance rules: "102" for the bank account,
    "211|<counterparty>" (212, 215 alike) for a payable line; None for anything else."""
    if posting.account_code == BANK:
        return BANK
    if posting.account_code in NON_NEGATIVE_ACCOUNTS and posting.counterparty is not None:
        return f"{posting.account_code}|{posting.counterparty}"
    return None


@stable_topic("ledger:Book")
class Book(LedgerAggregate):
    """账簿: one organisation's balances, payables by counterparty and closed months.

    The write side keeps just what the rules need: the bank balance (no payout below zero),
    what is owed to and by each counterparty (no remittance above what is owed), and closes.
    """

    @staticmethod
    def id_for(organization_code: str) -> Any:
        return stable_id("book", organization_code)

    @staticmethod
    def create_id(organization_code: str, **_: object) -> Any:
        return Book.id_for(organization_code)

    # 2: the dated movements of the watched accounts (dated balance rules); 3: voucher counts
    # per month (voucher numbers). A snapshot of an older book lacks them, so the repository
    # replays such a book from its events instead.
    class_version = 3

    # Each date's movements and each year's flows are replaced, never changed in place
    # (_recorded), so a command's copy of the book shares them: a county's book holds a dict
    # per counterparty, and copying every one took about 1 ms each time a command touched it.
    _SHARED_WITH_COPIES = frozenset(("movements", "year_flows"))

    @event("Opened", topic="ledger:Book.Opened")
    def __init__(self, organization_code: str) -> None:
        self.organization_code = organization_code
        # Signed fen per account (debit positive), and per "account|counterparty".
        self.balances: dict[str, int] = {}
        self.counterparty_balances: dict[str, int] = {}
        # Signed fen per watched key ("102", "211|<counterparty>", ...) per ISO date: the
        # balance on any date is the sum of the movements on and before it.
        self.movements: dict[str, dict[str, int]] = {}
        self.closed_months: list[str] = []
        # Every close and reopening: action, period, at (ISO), actor, reason.
        self.period_log: list[dict[str, Any]] = []
        # Income and expenditure (4xx, 5xx) per "account|earmarked flag" per year (signed
        # fen), for the year-end close; and each closed year's closing voucher.
        self.year_flows: dict[str, dict[str, int]] = {}
        self.year_end_vouchers: dict[str, str] = {}
        # 记账凭证号: how many vouchers each accounting month (YYYY-MM) has numbered.
        self.voucher_counts: dict[str, int] = {}

    # --- queries -------------------------------------------------------------------------

    def balance(self, account_code: str) -> Money:
        return Money(self.balances.get(account_code, 0))

    def bank_balance(self) -> Money:
        return self.balance(BANK)

    def owed(self, account_code: str, on: datetime.date | None = None) -> dict[str, Money]:
        """Credit balances of a payable account by counterparty (what this union owes), today
        or at the end of the day `on`."""
        prefix = account_code + "|"
        if on is None:
            balances = self.counterparty_balances
        else:
            day = on.isoformat()
            balances = {
                key: sum(fen for d, fen in dated.items() if d <= day)
                for key, dated in self.movements.items()
                if key.startswith(prefix)
            }
        return {
            key[len(prefix) :]: Money(-fen)
            for key, fen in balances.items()
            if key.startswith(prefix) and fen != 0
        }

    def is_closed(self, month: Month) -> bool:
        last = self.last_closed
        return last is not None and month <= last

    def lowest_from(self, key: str, day: datetime.date, change: int) -> tuple[int, str]:
        """The lowest balance of a watched key (signed so that the rule is "not below zero")
        on `day` and on every later date already posted, once `change` is added on `day`;
        with the date it falls on."""
        sign = 1 if key == BANK else -1
        dated = self.movements.get(key, {})
        start = day.isoformat()
        running = sign * (change + sum(fen for d, fen in dated.items() if d <= start))
        lowest, when = running, start
        for d in sorted(d for d in dated if d > start):
            running += sign * dated[d]
            if running < lowest:
                lowest, when = running, d
        return lowest, when

    def check_can_post(self, postings: Iterable[Posting], effective_on: datetime.date) -> None:
        """The rules every posting into these books obeys: an open month, and no bank account
        (102) or payable towards a counterparty (211, 212, 215) below zero on the voucher's
        date or on any later date already posted (a back-dated voucher meets the balances
        that follow it)."""
        last = self.last_closed
        if last is not None and Month.of(effective_on) <= last:
            raise PeriodClosed(
                f"{Month.of(effective_on)} is closed for {self.organization_code} (closed "
                f"through {last}); post into a month after it"
            )
        changes: dict[str, int] = {}
        for p in postings:
            key = watched_key(p)
            if key is not None:
                changes[key] = changes.get(key, 0) + p.signed_fen
        for key, change in changes.items():
            worsens = change < 0 if key == BANK else change > 0
            if not worsens:
                continue
            lowest, when = self.lowest_from(key, effective_on, change)
            if lowest >= 0:
                continue
            if key == BANK:
                raise InsufficientFunds(
                    f"bank deposits (102) of {self.organization_code} would fall to "
                    f"{Money(lowest)} on {when}"
                )
            account_code, counterparty = key.split("|", 1)
            raise RemittanceExceedsOwed(
                f"{self.organization_code} would owe {counterparty} less than nothing on "
                f"{account_code} ({Money(lowest)} on {when})"
            )

    # --- commands --------------------------------------------------------------------------

    def record(self, voucher_id: str, effective_on: datetime.date, postings: list[Posting]) -> str:
        """Records this book's lines of a voucher and returns the voucher's number in this
        book (记-YYYY-MM-NNNN: the next of the voucher's own month, in order of recording)."""
        own = [p for p in postings if p.organization_code == self.organization_code]
        self.check_can_post(own, effective_on)
        number = self.voucher_counts.get(str(Month.of(effective_on)), 0) + 1
        self._recorded(
            voucher_id=voucher_id, effective_on=effective_on, postings=own, number=number
        )
        return voucher_number(Month.of(effective_on), number)

    @event("Recorded", topic="ledger:Book.Recorded")
    def _recorded(
        self,
        voucher_id: str,
        effective_on: datetime.date,
        postings: list[Posting],
        number: int | None = None,
    ) -> None:
        """number: the voucher's number in its month; recorded by every event since voucher
        numbers exist. Older events took the next number of their month in the order they
        were recorded, as they are replayed."""
        check_balanced(postings)
        month = str(Month.of(effective_on))
        counted = self.voucher_counts.get(month, 0) + 1
        if number is not None and number != counted:
            raise ValueError(f"voucher number {number} of {month} follows {counted - 1}")
        self.voucher_counts[month] = counted
        day = effective_on.isoformat()
        for p in postings:
            self.balances[p.account_code] = self.balances.get(p.account_code, 0) + p.signed_fen
            if p.counterparty is not None:
                key = f"{p.account_code}|{p.counterparty}"
                self.counterparty_balances[key] = (
                    self.counterparty_balances.get(key, 0) + p.signed_fen
                )
            watched = watched_key(p)
            # New dicts, not changed in place: copies of this book share the old ones.
            if watched is not None:
                dated = dict(self.movements.get(watched, ()))
                dated[day] = dated.get(day, 0) + p.signed_fen
                self.movements[watched] = dated
            if ACCOUNTS[p.account_code].kind in RESULT_KINDS:
                flow_key = f"{p.account_code}|{int(p.earmarked)}"
                flows = dict(self.year_flows.get(flow_key, ()))
                year = day[:4]
                flows[year] = flows.get(year, 0) + p.signed_fen
                self.year_flows[flow_key] = flows

    def results_through(self, year: int) -> dict[tuple[str, bool], int]:
        """Each income and expenditure balance (signed fen, by account and earmarked flag) at
        the end of 31 December of year: what the year-end close moves into 321 and 322."""
        last = f"{year:04d}"
        result: dict[tuple[str, bool], int] = {}
        for key, by_year in sorted(self.year_flows.items()):
            fen = sum(f for y, f in by_year.items() if y <= last)
            if fen:
                code, flag = key.split("|")
                result[(code, flag == "1")] = fen
        return result

    def year_end_voucher(self, month: Month) -> str | None:
        """The closing voucher of the year that closing this month (December) recorded."""
        return self.year_end_vouchers.get(str(month.year)) if month.month == 12 else None

    @property
    def last_closed(self) -> Month | None:
        """The last month closed (月结); every month up to it is closed too."""
        return Month.parse(max(self.closed_months)) if self.closed_months else None

    def close_month(
        self, month: Month, today: datetime.date, year_end_voucher: str | None = None
    ) -> None:
        """Months close in order, each after it has ended (today: the date in China).
        Closing December names the year's closing voucher, if the year left any balance."""
        self.check_can_close(month, today)
        self.trigger_event(self.MonthClosed, period=str(month), year_end_voucher=year_end_voucher)

    def check_can_close(self, month: Month, today: datetime.date) -> None:
        last = self.last_closed
        if self.is_closed(month) or (last is not None and month <= last):
            raise AlreadyExists(f"{month} is already closed for {self.organization_code}")
        if last is not None and month != last.next():
            raise PeriodOutOfOrder(
                f"months close in order: the next month to close for "
                f"{self.organization_code} is {last.next()}, not {month}"
            )
        if month.last_day >= today:
            raise PeriodOutOfOrder(
                f"{month} has not ended (today is {today.isoformat()}); a month closes after "
                "its last day"
            )

    def reopen_month(self, month: Month, reason: str) -> None:
        """反结账: only the last closed month reopens."""
        last = self.last_closed
        if last is None or month != last:
            raise PeriodOutOfOrder(
                f"only the last closed month reopens; for {self.organization_code} that is "
                f"{last if last is not None else 'none'}, not {month}"
            )
        self.trigger_event(self.MonthReopened, period=str(month), reason=reason)

    class MonthClosed(LedgerAggregate.Event):
        """月结. The log keeps when and by whom (the event's own timestamp and actor)."""

        TOPIC = "ledger:Book.MonthClosed"
        class_version = 2
        period: str
        year_end_voucher: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 2 names the year-end voucher of a December close (none before)."""
            state["year_end_voucher"] = None

        def apply(self, aggregate: Any) -> None:
            aggregate.closed_months.append(self.period)
            if self.year_end_voucher is not None:
                aggregate.year_end_vouchers[self.period[:4]] = self.year_end_voucher
            aggregate.period_log.append(
                {
                    "action": "close",
                    "period": self.period,
                    "at": self.timestamp.isoformat(),
                    "actor": self.actor,
                    "reason": None,
                }
            )

    class MonthReopened(LedgerAggregate.Event):
        """反结账: the last closed month is open again."""

        TOPIC = "ledger:Book.MonthReopened"
        period: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.closed_months.remove(self.period)
            if self.period.endswith("-12"):
                aggregate.year_end_vouchers.pop(self.period[:4], None)
            aggregate.period_log.append(
                {
                    "action": "reopen",
                    "period": self.period,
                    "at": self.timestamp.isoformat(),
                    "actor": self.actor,
                    "reason": self.reason,
                }
            )
