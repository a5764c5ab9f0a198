"""Month-end reconciliation (月末对账): the ledger's levy receipts against the tax bureau's
levy file, and one union's bank-account movements (102 银行存款) against its bank statement.

Differences are reported line by line (matched, missing on either side, amount mismatches),
never fixed. The two CSV layouts are documented in docs/reconciliation.md.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.errors import InvalidValue
from domain.identity import CreditCode
from domain.money import Money
from domain.period import Month
from projections.read_models.models import ReadModels
from projections.read_models.rows import amount, day_int, int_day
from projections.read_models.scope import subtree_codes

MAX_FILE_ROWS = 1_000_000
# A bank books a transfer on its value date, which may lag the ledger's date by a few days.
BANK_DATE_TOLERANCE_DAYS = 5

LEVY_HEADERS = ("employer_credit_code", "period", "amount")
LEVY_HEADERS_ZH = ("缴费单位统一社会信用代码", "所属期", "金额")
BANK_HEADERS = ("date", "amount", "reference")
BANK_HEADERS_ZH = ("日期", "金额", "摘要")


@dataclass
class Section:
    """One reconciliation: rows by outcome."""

    name: str
    matched: list[dict[str, Any]] = field(default_factory=list)
    missing_in_ledger: list[dict[str, Any]] = field(default_factory=list)
    missing_in_file: list[dict[str, Any]] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing_in_ledger or self.missing_in_file or self.mismatched)

    def counts(self) -> dict[str, int]:
        return {
            "matched": len(self.matched),
            "missing_in_ledger": len(self.missing_in_ledger),
            "missing_in_file": len(self.missing_in_file),
            "mismatched": len(self.mismatched),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "clean": self.clean,
            **self.counts(),
            "rows": {
                "matched": self.matched,
                "missing_in_ledger": self.missing_in_ledger,
                "missing_in_file": self.missing_in_file,
                "mismatched": self.mismatched,
            },
        }


def _read_csv(
    path: Path, english: tuple[str, ...], chinese: tuple[str, ...], what: str
) -> list[tuple[int, dict[str, str]]]:
    text = Path(path).read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if tuple(header[: len(english)]) == english:
        names = english
    elif tuple(header[: len(chinese)]) == chinese:
        names = english
    else:
        raise InvalidValue(
            what, f"{path}: the header must be {','.join(english)} (or {','.join(chinese)})"
        )
    rows = []
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(rows) >= MAX_FILE_ROWS:
            raise InvalidValue(what, f"{path}: more than {MAX_FILE_ROWS} rows")
        if len(values) < len(names):
            raise InvalidValue(what, f"{path} line {line_no}: expected {len(names)} columns")
        rows.append((line_no, {n: values[i].strip() for i, n in enumerate(names)}))
    return rows


def _field(path: Path, line_no: int, parse, value: str, what: str):
    try:
        return parse(value)
    except InvalidValue as exc:
        raise InvalidValue(what, f"{path} line {line_no}: {exc.reason}") from None
    except ValueError as exc:
        raise InvalidValue(what, f"{path} line {line_no}: {exc}") from None


def read_levy_file(path: Path) -> list[dict[str, Any]]:
    """The tax bureau's file: employer credit code, period (YYYY-MM), amount (yuan)."""
    result = []
    for line_no, row in _read_csv(path, LEVY_HEADERS, LEVY_HEADERS_ZH, "levy_file"):
        code = _field(
            path,
            line_no,
            lambda v: CreditCode.parse(v).value,
            row["employer_credit_code"],
            "levy_file",
        )
        period = _field(path, line_no, lambda v: str(Month.parse(v)), row["period"], "levy_file")
        money = _field(path, line_no, Money.parse, row["amount"], "levy_file")
        result.append(
            {"line": line_no, "employer_code": code, "period": period, "amount_fen": money.fen}
        )
    return result


def read_bank_file(path: Path) -> list[dict[str, Any]]:
    """A bank statement: date (YYYY-MM-DD), amount (yuan; money in positive, out negative),
    reference (free text; a voucher id in it matches that voucher)."""
    result = []
    for line_no, row in _read_csv(path, BANK_HEADERS, BANK_HEADERS_ZH, "bank_file"):
        day = _field(path, line_no, datetime.date.fromisoformat, row["date"], "bank_file")
        money = _field(path, line_no, Money.parse, row["amount"], "bank_file")
        result.append(
            {"line": line_no, "date": day, "amount_fen": money.fen, "reference": row["reference"]}
        )
    return result


def reconcile_levies(
    read_models: ReadModels,
    month: Month,
    file_rows: list[dict[str, Any]],
    organization: str | None = None,
) -> Section:
    """Tax-collected levies (and founding reserves) of the period, by employer, against the
    tax bureau's file. Reversed receipts do not count. With an organisation, only levies
    received by it or a union below it."""
    section = Section("拨缴经费（税务代收）")
    period = str(month)
    store, tables = read_models.store, read_models.tables
    with store.reader() as cur:
        cur.execute(
            store.sql(
                f"SELECT r.employer_code, r.receiving_organization_code, r.amount_fen"
                f" FROM {tables.table('levy_receipts')} r"
                f" JOIN {tables.table('vouchers')} v ON v.voucher_id = r.voucher_id"
                " WHERE r.period = ? AND r.channel = 'tax' AND v.reversed_by IS NULL"
            ),
            (period,),
        )
        receipts = cur.fetchall()
        scope = None
        if organization is not None:
            scope = set(
                subtree_codes(store, cur, tables, organization, day_int(month.last_day), 2**62)
            )
    ledger: dict[str, int] = defaultdict(int)
    for employer, receiver, fen in receipts:
        if scope is None or receiver in scope:
            ledger[employer] += int(fen)
    bureau: dict[str, int] = defaultdict(int)
    for row in file_rows:
        if row["period"] == period:
            bureau[row["employer_code"]] += row["amount_fen"]
    for employer in sorted(set(ledger) | set(bureau)):
        ours, theirs = ledger.get(employer), bureau.get(employer)
        entry = {
            "employer_code": employer,
            "period": period,
            "ledger_amount": None if ours is None else amount(ours),
            "file_amount": None if theirs is None else amount(theirs),
        }
        if ours is None:
            section.missing_in_ledger.append(entry)
        elif theirs is None:
            section.missing_in_file.append(entry)
        elif ours != theirs:
            section.mismatched.append({**entry, "difference": amount(ours - theirs)})
        else:
            section.matched.append(entry)
    return section


def bank_movements(
    read_models: ReadModels, organization: str, month: Month
) -> list[dict[str, Any]]:
    """Net 102 movement per voucher of one union in the month (money in positive)."""
    store, tables = read_models.store, read_models.tables
    with store.reader() as cur:
        cur.execute(
            store.sql(
                "SELECT l.voucher_id, l.effective_on, SUM(l.debit_fen) - SUM(l.credit_fen),"
                f" MIN(v.description) FROM {tables.table('ledger_lines')} l"
                f" JOIN {tables.table('vouchers')} v ON v.voucher_id = l.voucher_id"
                " WHERE l.organization_code = ? AND l.account_code = '102'"
                " AND l.effective_on >= ? AND l.effective_on <= ?"
                " GROUP BY l.voucher_id, l.effective_on ORDER BY l.effective_on, l.voucher_id"
            ),
            (organization, day_int(month.first_day), day_int(month.last_day)),
        )
        rows = cur.fetchall()
    return [
        {"voucher_id": v, "date": int_day(day), "amount_fen": int(fen), "description": text}
        for v, day, fen, text in rows
        if int(fen) != 0
    ]


def reconcile_bank(
    read_models: ReadModels, organization: str, month: Month, file_rows: list[dict[str, Any]]
) -> Section:
    """Pairs ledger movements with statement lines: first by a voucher id named in the
    reference, then by the same date and amount, then by the same amount within a few days."""
    section = Section("银行存款")
    ledger = bank_movements(read_models, organization, month)
    statement = [r for r in file_rows if month.contains(r["date"])]
    open_ledger = list(ledger)
    open_bank = list(statement)

    def entry(ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "voucher_id": ours and ours["voucher_id"],
            "ledger_date": ours and ours["date"].isoformat(),
            "ledger_amount": ours and amount(ours["amount_fen"]),
            "description": ours and ours["description"],
            "bank_line": theirs and theirs["line"],
            "bank_date": theirs and theirs["date"].isoformat(),
            "bank_amount": theirs and amount(theirs["amount_fen"]),
            "reference": theirs and theirs["reference"],
        }

    for theirs in list(open_bank):
        reference = theirs["reference"].lower()
        named = [
            o
            for o in open_ledger
            if o["voucher_id"] in reference or o["voucher_id"][:8] in reference.split()
        ]
        if len(named) == 1:
            ours = named[0]
            open_ledger.remove(ours)
            open_bank.remove(theirs)
            if ours["amount_fen"] == theirs["amount_fen"]:
                section.matched.append(entry(ours, theirs))
            else:
                section.mismatched.append(
                    {
                        **entry(ours, theirs),
                        "difference": amount(ours["amount_fen"] - theirs["amount_fen"]),
                    }
                )
    for exact in (True, False):
        for theirs in list(open_bank):
            candidates = [
                o
                for o in open_ledger
                if o["amount_fen"] == theirs["amount_fen"]
                and (
                    o["date"] == theirs["date"]
                    if exact
                    else abs((o["date"] - theirs["date"]).days) <= BANK_DATE_TOLERANCE_DAYS
                )
            ]
            if candidates:
                ours = min(
                    candidates,
                    key=lambda o: (abs((o["date"] - theirs["date"]).days), o["voucher_id"]),
                )
                open_ledger.remove(ours)
                open_bank.remove(theirs)
                section.matched.append(entry(ours, theirs))
    section.missing_in_file.extend(entry(o, None) for o in open_ledger)
    section.missing_in_ledger.extend(entry(None, t) for t in open_bank)
    return section
