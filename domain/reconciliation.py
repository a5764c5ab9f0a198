"""月末对账: the lines of the files banks and tax bureaus hand out, and the rules that pair
them with the ledger's entries.

Matching is stated, in this order, and every pair says which rule made it:

1. `reference`: the file line names the ledger entry (a voucher's id or number in a bank line's
   摘要; the employer's credit code and the period in a levy line). Amounts that then differ are
   a difference (`amount_differs`), never a match.
2. `date_and_amount`: the same date and the same amount.
3. `window`: the same amount, dated at most `window_days` apart (a bank books on its value
   date, a tax bureau on its 入库日期); the closest date wins.

What is left over on either side is a difference: `missing_in_ledger` (a file line the ledger
lacks) or `missing_in_file` (a ledger entry the file lacks). A file row that could not be read
is a difference too (`bad_row`), naming its row; the run goes on.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any

from domain.money import Money

DEFAULT_WINDOW_DAYS = 5
MAX_WINDOW_DAYS = 31
RULES = ("reference", "date_and_amount", "window")
RULE_NAMES = {
    "reference": "按凭证/代码",
    "date_and_amount": "按日期和金额",
    "window": "按金额（日期相差不超过窗口）",
}
DIFFERENCE_KINDS = ("bad_row", "amount_differs", "missing_in_ledger", "missing_in_file")
DIFFERENCE_NAMES = {
    "bad_row": "无法读取的行",
    "amount_differs": "金额不符",
    "missing_in_ledger": "账簿缺少",
    "missing_in_file": "外部文件缺少",
}


def levy_reference(employer_code: str, period: str) -> str:
    """How a levy line names a levy: the employer's credit code and the period, as one word."""
    return f"{employer_code}@{period}"


def yuan(fen: int | None) -> str | None:
    return None if fen is None else str(Money(fen))


@dataclass(frozen=True)
class Entry:
    """One side's line: a ledger entry (`references` it may be named by) or a file line
    (`text` that may name one). `shown` is what the report prints for it."""

    key: str
    day: datetime.date | None
    amount_fen: int
    shown: dict[str, Any]
    references: tuple[str, ...] = ()
    text: str = ""
    row: int | None = None


@dataclass
class Matching:
    matches: list[dict[str, Any]] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)

    def by_rule(self) -> dict[str, int]:
        counts = dict.fromkeys(RULES, 0)
        for m in self.matches:
            counts[m["rule"]] += 1
        return counts


def _pair(rule: str, ours: Entry, theirs: Entry) -> dict[str, Any]:
    return {"rule": rule, "row": theirs.row, "ledger": ours.shown, "file": theirs.shown}


def difference(
    kind: str,
    reason: str,
    *,
    row: int | None = None,
    ledger: dict[str, Any] | None = None,
    file: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"kind": kind, "row": row, "reason": reason, "ledger": ledger, "file": file}


_TOKEN = re.compile(r"[0-9a-z@-]+")


def tokens(text: str) -> set[str]:
    """The words of a line's text a reference may be: runs of letters, digits, `@` and `-`,
    and their parts between dashes (a voucher id's first 8 characters)."""
    found: set[str] = set()
    for token in _TOKEN.findall(text.lower()):
        found.add(token)
        found.update(token.split("-"))
    return found


def match(ledger: list[Entry], lines: list[Entry], window_days: int) -> Matching:
    """Pairs ledger entries with file lines by the three rules in order, one to one. A
    reference is a whole word of the line's text. Entries are looked up by reference and by
    amount, so a file of tens of thousands of lines costs no more than a pass over it."""
    result = Matching()
    open_ledger = {e.key: e for e in ledger}
    by_reference: dict[str, list[str]] = {}
    by_amount: dict[int, list[str]] = {}
    for e in ledger:
        for reference in e.references:
            by_reference.setdefault(reference.lower(), []).append(e.key)
        by_amount.setdefault(e.amount_fen, []).append(e.key)

    def closest(theirs: Entry, candidates: list[Entry]) -> Entry:
        def distance(o: Entry) -> tuple[int, int, str]:
            days = (
                abs((o.day - theirs.day).days)
                if o.day is not None and theirs.day is not None
                else 10**6
            )
            return (0 if o.amount_fen == theirs.amount_fen else 1, days, o.key)

        return min(candidates, key=distance)

    def take(ours: Entry) -> None:
        del open_ledger[ours.key]
        by_amount[ours.amount_fen].remove(ours.key)

    left: list[Entry] = []
    for theirs in lines:
        keys = {k for t in tokens(theirs.text) for k in by_reference.get(t, ()) if k in open_ledger}
        if not keys:
            left.append(theirs)
            continue
        ours = closest(theirs, [open_ledger[k] for k in keys])
        take(ours)
        if ours.amount_fen == theirs.amount_fen:
            result.matches.append(_pair("reference", ours, theirs))
        else:
            result.differences.append(
                difference(
                    "amount_differs",
                    f"the line names the ledger entry, but the amounts differ by "
                    f"{yuan(ours.amount_fen - theirs.amount_fen)}",
                    row=theirs.row,
                    ledger=ours.shown,
                    file=theirs.shown,
                )
            )
    for rule in ("date_and_amount", "window"):
        still: list[Entry] = []
        for theirs in left:
            day = theirs.day
            if day is None:
                still.append(theirs)
                continue
            candidates = [
                o
                for o in (open_ledger[k] for k in by_amount.get(theirs.amount_fen, ()))
                if o.day is not None
                and (
                    o.day == day
                    if rule == "date_and_amount"
                    else abs((o.day - day).days) <= window_days
                )
            ]
            if not candidates:
                still.append(theirs)
                continue
            ours = closest(theirs, candidates)
            take(ours)
            result.matches.append(_pair(rule, ours, theirs))
        left = still
    for theirs in left:
        result.differences.append(
            difference(
                "missing_in_ledger",
                "no ledger entry matches this line",
                row=theirs.row,
                file=theirs.shown,
            )
        )
    for ours in open_ledger.values():
        result.differences.append(
            difference(
                "missing_in_file",
                "no line of the file matches this ledger entry",
                ledger=ours.shown,
            )
        )
    return result


@dataclass(frozen=True)
class BankLine:
    """A bank statement's line: money in positive, out negative."""

    row: int
    day: datetime.date
    amount_fen: int
    summary: str = ""
    balance_fen: int | None = None
    counterparty_name: str = ""
    counterparty_account: str = ""

    def entry(self) -> Entry:
        return Entry(
            key=f"row:{self.row}",
            day=self.day,
            amount_fen=self.amount_fen,
            text=self.summary,
            row=self.row,
            shown={
                "row": self.row,
                "date": self.day.isoformat(),
                "amount": yuan(self.amount_fen),
                "summary": self.summary,
                "balance": yuan(self.balance_fen),
                "counterparty_name": self.counterparty_name,
                "counterparty_account": self.counterparty_account,
            },
        )


@dataclass(frozen=True)
class LevyLine:
    """A line of the tax bureau's levy file (工会经费代收明细)."""

    row: int
    employer_code: str
    period: str
    amount_fen: int
    payroll_fen: int | None = None
    paid_on: datetime.date | None = None

    def entry(self) -> Entry:
        return Entry(
            key=f"row:{self.row}",
            day=self.paid_on,
            amount_fen=self.amount_fen,
            text=levy_reference(self.employer_code, self.period),
            row=self.row,
            shown={
                "row": self.row,
                "employer_code": self.employer_code,
                "period": self.period,
                "payroll_total": yuan(self.payroll_fen),
                "amount": yuan(self.amount_fen),
                "paid_on": self.paid_on.isoformat() if self.paid_on else None,
            },
        )


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read: its number, the column at fault and why, and its cells
    by the field their column holds (columns the reader does not use are left out)."""

    row: int
    field: str | None
    reason: str
    cells: tuple[tuple[str, str], ...] = ()

    def difference(self) -> dict[str, Any]:
        return difference(
            "bad_row",
            f"{self.field}: {self.reason}" if self.field else self.reason,
            row=self.row,
            file={"row": self.row, **dict(self.cells)},
        )


@dataclass
class FileLines:
    """What a file held: its lines, its bad rows, where its heading was, which layout."""

    kind: str  # "bank" or "levy"
    name: str
    heading_row: int
    columns: dict[str, str]  # field -> heading as written
    lines: list[Any] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.lines) + len(self.bad_rows)
