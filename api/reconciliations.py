"""月末对账 run end to end, the one way both the HTTP service and `ledger reconcile` run it:
read the files (api/reconciliation_files.py; a file without a heading row is refused before
anything is stored, a bad row is a difference), check the union's books against the read models
(or take the caller's full rebuild comparison), pair each file with the ledger
(projections/reconciliation), and store the run as events (RecordReconciliation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any
from uuid import uuid4

from api.reconciliation_files import read_file
from domain.errors import InvalidValue
from domain.period import Month
from domain.reconciliation import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, FileLines
from projections.read_models.models import ReadModels
from projections.reconciliation.monitors import alerts, file_alerts
from projections.reconciliation.reconcile import books_comparison, reconcile_file
from service.application import Ledger
from service.commands import RecordReconciliation
from service.reconciliations import book_state, run_view

# A write to the union's books between reading them and catching the read models up makes the
# two disagree for no fault of either: read them again, this many times.
CONSISTENT_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Upload:
    stream: IO[bytes]
    name: str


def read_files(levy: Upload | None, bank: Upload | None) -> list[FileLines]:
    files = []
    if levy is not None:
        files.append(read_file(levy.stream, "levy", levy.name))
    if bank is not None:
        files.append(read_file(bank.stream, "bank", bank.name))
    return files


def check_window(window_days: int) -> int:
    if isinstance(window_days, bool) or not 0 <= window_days <= MAX_WINDOW_DAYS:
        raise InvalidValue("window_days", f"a window is 0 to {MAX_WINDOW_DAYS} days")
    return window_days


def books_check(ledger: Ledger, read_models: ReadModels, organization: str) -> dict[str, Any]:
    """The union's books against the read models at one consistent moment."""
    for _ in range(CONSISTENT_READ_ATTEMPTS):
        version, balances = book_state(ledger, organization)
        read_models.catch_up()
        if book_state(ledger, organization)[0] == version:
            break
    return books_comparison(read_models, organization, balances)


def run_reconciliation(
    ledger: Ledger,
    read_models: ReadModels,
    *,
    organization: str,
    period: str,
    files: list[FileLines],
    window_days: int = DEFAULT_WINDOW_DAYS,
    actor: str,
    comparison: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int | None]:
    """Runs and stores one reconciliation; (the run as stored, the position of its events)."""
    month = Month.parse(period)
    check_window(window_days)
    ledger.unit_of_work().org(organization, field="organization_code")
    if comparison is None:
        comparison = books_check(ledger, read_models, organization)
    else:
        read_models.catch_up()
    sections = [
        reconcile_file(read_models, organization, month, lines, window_days) for lines in files
    ]
    report = {
        "comparison": comparison,
        "files": sections,
        "monitors": alerts(read_models, organization, month.last_day)
        + file_alerts(organization, sections),
        "differences_total": comparison["differing_rows"]
        + sum(s["differences_count"] for s in sections),
    }
    run_id = uuid4()
    result = ledger.execute(
        RecordReconciliation(
            run_id=run_id,
            organization_code=organization,
            period=str(month),
            window_days=window_days,
            report=report,
        ),
        actor=actor,
    )
    return run_view(ledger, run_id), result.position
