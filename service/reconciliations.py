"""对账记录 as the write side has them: a run by id, a union's runs, and a union's books (the
write side's balances, which a run checks the read models against)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.errors import NotFound
from domain.reconciliation_runs import ReconciliationRegister, ReconciliationRun
from service.application import Ledger


def _run(ledger: Ledger, run_id: str | UUID) -> ReconciliationRun:
    try:
        uuid = run_id if isinstance(run_id, UUID) else UUID(str(run_id))
    except ValueError:
        uuid = None
    run = ledger.unit_of_work().get(uuid) if uuid is not None else None
    if not isinstance(run, ReconciliationRun):
        raise NotFound(f"reconciliation run {str(run_id)[:40]} not found")
    return run


def summary(run: ReconciliationRun) -> dict[str, Any]:
    report = run.report
    return {
        "run_id": str(run.id),
        "organization_code": run.organization_code,
        "period": run.period,
        "window_days": run.window_days,
        "status": run.status,
        "recorded_at": run.created_on.isoformat(),
        "signed_off_by": run.signed_off_by,
        "signed_off_at": run.signed_off_at.isoformat() if run.signed_off_at else None,
        "note": run.note,
        "differences": report.get("differences_total", 0),
    }


def run_view(ledger: Ledger, run_id: str | UUID) -> dict[str, Any]:
    """The whole run: its summary, the books check, every file's rows and the monitors."""
    run = _run(ledger, run_id)
    return {**summary(run), **run.report}


def organization_of(ledger: Ledger, run_id: str | UUID) -> str:
    return _run(ledger, run_id).organization_code


def list_runs(
    ledger: Ledger,
    organization_code: str,
    period: str | None,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A union's runs, newest first (one period's, if given): one page of them, and how many
    there are. Only the page's runs are read."""
    register = ledger.unit_of_work().get(ReconciliationRegister.id_for(organization_code))
    if register is None:
        return [], 0
    entries = [e for e in reversed(register.runs) if period is None or e["period"] == period]
    page = entries[offset:] if limit is None else entries[offset : offset + limit]
    return [summary(_run(ledger, e["run_id"])) for e in page], len(entries)


def book_state(ledger: Ledger, organization_code: str) -> tuple[int, dict[str, int]]:
    """(the book's version, its signed balances per account, debit positive)."""
    book = ledger.get_book(organization_code)
    if book is None:
        return 0, {}
    return book.version, dict(book.balances)
