"""月末对账: the ledger's side of a month, read from the read models, against the files banks
and tax bureaus hand out (read by api/reconciliation_files.py into domain.reconciliation's lines).

- Levies: tax-collected levies (and founding reserves) of the period received by the union or a
  union below it, not reversed, one entry per receipt, named by employer credit code and period.
- Bank: the union's net 102 (银行存款) movement per voucher dated in the month, named by its
  voucher id (or the id's first 8 characters).

The pairing rules are domain.reconciliation.match's; a run names its window of days.
The books check compares the write side's books of the union (its Book aggregate, replayed from
its own events) with the read models' lines, account by account: no rebuild of the whole store.
"""

from __future__ import annotations

from typing import Any

from domain.period import Month
from domain.reconciliation import Entry, FileLines, levy_reference, match, yuan
from projections.read_models.models import ReadModels
from projections.read_models.rows import day_int, int_day
from projections.read_models.scope import subtree_codes


def ledger_levies(read_models: ReadModels, month: Month, organization: str) -> list[Entry]:
    store, tables = read_models.store, read_models.tables
    with store.reader() as cur:
        cur.execute(
            store.sql(
                "SELECT r.voucher_id, r.employer_code, r.receiving_organization_code,"
                " r.amount_fen, r.received_on, r.kind"
                f" FROM {tables.table('levy_receipts')} r"
                f" JOIN {tables.table('vouchers')} v ON v.voucher_id = r.voucher_id"
                " WHERE r.period = ? AND r.channel = 'tax' AND v.reversed_by IS NULL"
                " AND v.reverses IS NULL ORDER BY r.received_on, r.voucher_id"
            ),
            (str(month),),
        )
        receipts = cur.fetchall()
        scope = set(subtree_codes(store, cur, tables, organization, day_int(month.last_day), 2**62))
    entries = []
    for voucher_id, employer, receiver, fen, received_on, _kind in receipts:
        if receiver not in scope:
            continue
        day = int_day(received_on)
        entries.append(
            Entry(
                key=voucher_id,
                day=day,
                amount_fen=int(fen),
                references=(levy_reference(employer, str(month)),),
                shown={
                    "voucher_id": voucher_id,
                    "employer_code": employer,
                    "period": str(month),
                    "receiving_organization_code": receiver,
                    "amount": yuan(int(fen)),
                    "received_on": day.isoformat() if day else None,
                },
            )
        )
    return entries


def ledger_bank(read_models: ReadModels, organization: str, month: Month) -> list[Entry]:
    """Net 102 movement per voucher of one union in the month (money in positive)."""
    store, tables = read_models.store, read_models.tables
    with store.reader() as cur:
        cur.execute(
            store.sql(
                "SELECT l.voucher_id, l.effective_on, SUM(l.debit_fen) - SUM(l.credit_fen),"
                f" MIN(v.description), MIN(v.kind) FROM {tables.table('ledger_lines')} l"
                f" JOIN {tables.table('vouchers')} v ON v.voucher_id = l.voucher_id"
                " WHERE l.organization_code = ? AND l.account_code = '102'"
                " AND l.effective_on >= ? AND l.effective_on <= ?"
                " GROUP BY l.voucher_id, l.effective_on ORDER BY l.effective_on, l.voucher_id"
            ),
            (organization, day_int(month.first_day), day_int(month.last_day)),
        )
        rows = cur.fetchall()
    entries = []
    for voucher_id, effective_on, fen, description, kind in rows:
        if int(fen) == 0:
            continue
        day = int_day(effective_on)
        entries.append(
            Entry(
                key=voucher_id,
                day=day,
                amount_fen=int(fen),
                references=(voucher_id, voucher_id[:8]),
                shown={
                    "voucher_id": voucher_id,
                    "kind": kind,
                    "date": day.isoformat() if day else None,
                    "amount": yuan(int(fen)),
                    "description": description,
                },
            )
        )
    return entries


def bank_balance_fen(read_models: ReadModels, organization: str, month: Month) -> int:
    """The union's 102 balance at the end of the month, as the read models have it."""
    store, tables = read_models.store, read_models.tables
    with store.reader() as cur:
        cur.execute(
            store.sql(
                f"SELECT COALESCE(SUM(debit_fen) - SUM(credit_fen), 0)"
                f" FROM {tables.table('ledger_lines')}"
                " WHERE organization_code = ? AND account_code = '102' AND effective_on <= ?"
            ),
            (organization, day_int(month.last_day)),
        )
        return int(cur.fetchone()[0])


def reconcile_file(
    read_models: ReadModels,
    organization: str,
    month: Month,
    lines: FileLines,
    window_days: int,
) -> dict[str, Any]:
    """One file of a run: rows read, matched (by which rule), and every difference."""
    in_period = [
        line
        for line in lines.lines
        if (month.contains(line.day) if lines.kind == "bank" else line.period == str(month))
    ]
    ledger = (
        ledger_bank(read_models, organization, month)
        if lines.kind == "bank"
        else ledger_levies(read_models, month, organization)
    )
    matching = match(ledger, [line.entry() for line in in_period], window_days)
    differences = [bad.difference() for bad in lines.bad_rows] + matching.differences
    differences.sort(key=lambda d: (d["row"] is None, d["row"] or 0))
    section: dict[str, Any] = {
        "kind": lines.kind,
        "file_name": lines.name,
        "heading_row": lines.heading_row,
        "columns": lines.columns,
        "rows_read": lines.rows_read,
        "rows_bad": len(lines.bad_rows),
        "rows_outside_period": len(lines.lines) - len(in_period),
        "ledger_entries": len(ledger),
        "rows_matched": len(matching.matches),
        "matched_by": matching.by_rule(),
        "differences_count": len(differences),
        "matches": matching.matches,
        "differences": differences,
    }
    if lines.kind == "bank":
        closing = _closing_balance(in_period)
        section["closing_balance_file"] = yuan(closing)
        section["closing_balance_ledger"] = yuan(bank_balance_fen(read_models, organization, month))
    return section


def _closing_balance(lines: list[Any]) -> int | None:
    """The statement's 余额 on its last line of the month (lines in file order)."""
    with_balance = [line for line in lines if line.balance_fen is not None]
    if not with_balance:
        return None
    last_day = max(line.day for line in with_balance)
    return [line for line in with_balance if line.day == last_day][-1].balance_fen


def books_comparison(
    read_models: ReadModels, organization: str, book_balances: dict[str, int]
) -> dict[str, Any]:
    """The union's books on the write side (signed fen per account, debit positive) against
    the read models' ledger lines of the same union, account by account, at the read models'
    position (the caller catches them up first)."""
    store, tables = read_models.store, read_models.tables
    with store.reader() as cur:
        cur.execute(
            store.sql(
                "SELECT account_code, SUM(debit_fen) - SUM(credit_fen)"
                f" FROM {tables.table('ledger_lines')} WHERE organization_code = ?"
                " GROUP BY account_code"
            ),
            (organization,),
        )
        projected = {code: int(fen) for code, fen in cur.fetchall()}
    differences = []
    accounts = sorted(set(projected) | set(book_balances))
    for code in accounts:
        ours, theirs = book_balances.get(code, 0), projected.get(code, 0)
        if ours != theirs:
            differences.append(
                {"account_code": code, "books": yuan(ours), "read_models": yuan(theirs)}
            )
    return {
        "method": "books",
        "position": read_models.position(),
        "accounts_checked": len(accounts),
        "equal": not differences,
        "differing_rows": len(differences),
        "differences": differences,
    }
