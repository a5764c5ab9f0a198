"""监测: what an auditor wants to be told rather than to look for, over a union and every union
below it, as of a date.

- `levy_payable_overdue`: levy shares owed up (211) or down (212) that arose in a quarter and
  were still not remitted when the following quarter ended. What is owed to a counterparty is
  taken as paid oldest first: the part of today's balance older than every credit since the
  end of the quarter before last is overdue.
- `no_dues`: an active base union with no dues received in the last three months (the month of
  the date and the two before it).

Two more come from a run's files (projections/reconciliation/reconcile.py reports them):
`employer_without_levy` (an employer in the tax bureau's file whose levy the ledger does not
have) and `bank_balance_differs` (the ledger's 102 at the month's end against the statement's
closing 余额).
"""

from __future__ import annotations

import datetime
from typing import Any

from domain.reconciliation import yuan
from projections.read_models.models import ReadModels
from projections.read_models.rows import day_int
from projections.read_models.scope import org_filter

PAYABLE_NAMES = {"211": "应付上级经费", "212": "应付下级经费"}
DUES_MONTHS = 3


def quarter_end_before_last(day: datetime.date) -> datetime.date:
    """The last day of the quarter before the previous one: what arose by then had until the
    end of the previous quarter to be remitted."""
    this_quarter = datetime.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    previous = this_quarter - datetime.timedelta(days=1)
    previous_quarter = datetime.date(previous.year, (previous.month - 1) // 3 * 3 + 1, 1)
    return previous_quarter - datetime.timedelta(days=1)


def _months_back(day: datetime.date, months: int) -> datetime.date:
    year, month = day.year, day.month - (months - 1)
    while month < 1:
        month += 12
        year -= 1
    return datetime.date(year, month, 1)


def alerts(
    read_models: ReadModels, organization: str, as_of: datetime.date
) -> list[dict[str, Any]]:
    store, tables = read_models.store, read_models.tables
    lines = tables.table("ledger_lines")
    cutoff = quarter_end_before_last(as_of)
    since = _months_back(as_of, DUES_MONTHS)
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "tree_day": day_int(as_of),
        "k": 2**62,
        "as_of": day_int(as_of),
        "cutoff": day_int(cutoff),
        "since": day_int(since),
    }
    # The subtree as a CTE, never a list of parameters: a province has tens of thousands of
    # unions, past what a statement may bind.
    with_clause, in_subtree = org_filter(
        tables, "organization_code", "subtree", organization, params
    )
    account = "SUBSTR(account_code, 1, 3)"
    with store.reader() as cur:
        cur.execute(
            store.sql(
                f"{with_clause} SELECT organization_code, {account}, COALESCE(counterparty, ''),"
                " SUM(credit_fen) - SUM(debit_fen),"
                " SUM(CASE WHEN effective_on > :cutoff THEN credit_fen ELSE 0 END)"
                f" FROM {lines} WHERE {in_subtree} AND {account} IN ('211', '212')"
                " AND effective_on <= :as_of"
                f" GROUP BY organization_code, {account}, COALESCE(counterparty, '')"
                f" ORDER BY organization_code, {account}, COALESCE(counterparty, '')"
            ),
            params,
        )
        for code, account_code, counterparty, owed, recent in cur.fetchall():
            overdue = int(owed) - int(recent)
            if overdue > 0:
                found.append(
                    {
                        "kind": "levy_payable_overdue",
                        "organization_code": code,
                        "account_code": account_code,
                        "counterparty": counterparty or None,
                        "amount": yuan(overdue),
                        "arose_by": cutoff.isoformat(),
                        "message": f"{code} {PAYABLE_NAMES[account_code]}({account_code})"
                        f"{' ' + counterparty if counterparty else ''}: {yuan(overdue)} that "
                        f"arose by {cutoff} was not remitted by the end of the following quarter",
                    }
                )
        orgs = tables.table("organizations")
        _, org_in_subtree = org_filter(tables, "o.code", "subtree", organization, params)
        cur.execute(
            store.sql(
                f"{with_clause} SELECT o.code FROM {orgs} o WHERE {org_in_subtree}"
                " AND o.level IN ('base', 'joint_base') AND o.status = 'active'"
                " AND o.founded_on <= :since"
                f" AND NOT EXISTS (SELECT 1 FROM {lines} l WHERE l.organization_code = o.code"
                " AND l.kind = 'dues' AND l.effective_on >= :since AND l.effective_on <= :as_of)"
                " ORDER BY o.code"
            ),
            params,
        )
        for (code,) in cur.fetchall():
            found.append(
                {
                    "kind": "no_dues",
                    "organization_code": code,
                    "since": since.isoformat(),
                    "message": f"{code}: no dues received from {since} to {as_of}",
                }
            )
    return found


def file_alerts(organization: str, sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The monitors a run's files answer."""
    found: list[dict[str, Any]] = []
    for section in sections:
        if section["kind"] == "levy":
            employers = sorted(
                {
                    d["file"]["employer_code"]
                    for d in section["differences"]
                    if d["kind"] == "missing_in_ledger"
                }
            )
            found += [
                {
                    "kind": "employer_without_levy",
                    "organization_code": organization,
                    "employer_code": employer,
                    "message": f"{employer} paid levy to the tax bureau; the ledger has no "
                    "levy of it for the period",
                }
                for employer in employers
            ]
        elif section["kind"] == "bank":
            ours, theirs = section["closing_balance_ledger"], section["closing_balance_file"]
            if theirs is not None and ours != theirs:
                found.append(
                    {
                        "kind": "bank_balance_differs",
                        "organization_code": organization,
                        "ledger": ours,
                        "file": theirs,
                        "message": f"bank deposits (102) at the month's end: ledger {ours}, "
                        f"statement closing 余额 {theirs}",
                    }
                )
    return found
