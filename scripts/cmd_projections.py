"""`ledger project`, `ledger rebuild [--check]` and `ledger reconcile`: the read side's
commands (projection worker, rebuild with comparison, month-end reconciliation)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from domain.period import Month
from domain.privacy import mask
from projections.read_models.models import ReadModels
from projections.read_models.worker import ProjectionWorker
from projections.reconciliation.rebuild import RebuildReport, rebuild
from projections.reconciliation.reconcile import (
    Section,
    read_bank_file,
    read_levy_file,
    reconcile_bank,
    reconcile_levies,
)
from projections.reconciliation.report import OUTCOME_NAMES, workbook_bytes
from scripts.common import (
    CommandFailed,
    ledger_session,
    memory_mb,
    progress_bar,
    stderr_console,
)

MAX_LISTED = 20


def register(app: typer.Typer) -> None:
    app.command("project")(project)
    app.command("rebuild")(rebuild_command)
    app.command("reconcile")(reconcile)


def project(
    once: Annotated[bool, typer.Option(help="Catch up once and exit.")] = False,
    batch: Annotated[
        int, typer.Option(min=1, max=100_000, help="Events applied per transaction.")
    ] = 2_000,
) -> None:
    """Run the projection worker: keep the read models caught up with the events.

    `ledger serve` runs this loop in a process of its own; run it where the service is
    hosted otherwise (it wakes on PostgreSQL's LISTEN/NOTIFY, and polls SQLite). Stop with
    Ctrl-C or SIGTERM.
    """
    from api.logs import configure_logging

    configure_logging()
    with ledger_session() as ledger:
        read_models = ReadModels(ledger)
        try:
            worker = ProjectionWorker(read_models, batch_events=batch)
            if once:
                position = worker.catch_up_once()
                stderr_console.print(f"read models at position {position}")
                return
            signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
            stderr_console.print(f"projecting from position {read_models.position()}; Ctrl-C stops")
            try:
                worker.run()
            except KeyboardInterrupt:
                worker.stopping.set()
            stderr_console.print(f"stopped at position {read_models.position()}")
        finally:
            read_models.close()


def _run_rebuild(read_models: ReadModels, *, check_only: bool, keep_live: bool) -> RebuildReport:
    head = read_models.ledger.head_position()
    with progress_bar() as bar:
        task = bar.add_task("rebuilding read models (events)", total=head or 1)
        report = rebuild(
            read_models.store,
            read_models.projector,
            check_only=check_only,
            keep_live=keep_live,
            on_batch=lambda position: bar.update(task, completed=min(position, head)),
        )
        bar.update(task, completed=head or 1)
    return report


def _print_comparison(report: RebuildReport) -> None:
    comparison = report.comparison
    table = Table(title="rebuilt against live (per table)")
    for header in ("table", "rows live", "rows rebuilt", "differing rows", "checksum"):
        table.add_column(header)
    for t in comparison.tables:
        mark = "same" if t.equal else f"{t.checksum_live[:12]} ≠ {t.checksum_rebuilt[:12]}"
        table.add_row(t.table, str(t.rows_live), str(t.rows_rebuilt), str(t.differing_rows), mark)
    stderr_console.print(table)
    if comparison.organizations:
        orgs = Table(title="organisations whose rows differ")
        orgs.add_column("table")
        orgs.add_column("organisation")
        for (name, org), _ in list(sorted(comparison.organizations.items()))[:MAX_LISTED]:
            orgs.add_row(name, org or "(all)")
        stderr_console.print(orgs)
    for diff in comparison.differences[:MAX_LISTED]:
        stderr_console.print(
            f"[red]{diff['table']} {diff['key']}[/red]\n"
            f"  live:    {mask(diff['live'])}\n"
            f"  rebuilt: {mask(diff['rebuilt'])}"
        )
    if len(comparison.differences) > MAX_LISTED:
        stderr_console.print(f"... and {comparison.differing_rows - MAX_LISTED} more rows")


def rebuild_command(
    check: Annotated[
        bool,
        typer.Option("--check", help="Only compare; exit 1 if the rebuilt read models differ."),
    ] = False,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the full comparison as JSON to this file."),
    ] = None,
) -> None:
    """Rebuild every read model from the first event beside the live ones, compare them
    by content (per table and per organisation), and switch over atomically."""
    with ledger_session() as ledger:
        read_models = ReadModels(ledger)
        try:
            report = _run_rebuild(read_models, check_only=check, keep_live=False)
        finally:
            read_models.close()
    _print_comparison(report)
    if json_out is not None:
        # The command's own peak resident memory (Linux; null elsewhere), for the benchmark.
        result = {**report.as_dict(), "peak_rss_mb": memory_mb()}
        json_out.write_text(
            json.dumps(result, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
        )
    rate = (
        f"{report.events:,} events in {report.seconds:.1f}s ({report.events_per_s:,.0f} events/s)"
    )
    if report.switched:
        print(
            f"rebuilt through position {report.position}: {rate}; switched over; "
            f"{report.comparison.differing_rows} rows had differed"
        )
    else:
        print(
            f"checked through position {report.position}: {rate}; "
            f"{report.comparison.differing_rows} differing rows"
        )
    if check and not report.comparison.equal:
        raise CommandFailed(
            f"the rebuilt read models differ from the live ones in "
            f"{report.comparison.differing_rows} rows"
        )


def _print_section(section: Section) -> None:
    counts = section.counts()
    stderr_console.print(
        f"[bold]{section.name}[/bold]: "
        + ", ".join(f"{OUTCOME_NAMES[k]} {v}" for k, v in counts.items())
    )
    for outcome in ("mismatched", "missing_in_ledger", "missing_in_file"):
        for row in getattr(section, outcome)[:MAX_LISTED]:
            shown = {k: v for k, v in row.items() if v is not None}
            stderr_console.print(f"  {OUTCOME_NAMES[outcome]}: {shown}")


def reconcile(
    period: Annotated[str, typer.Option(help="The month, YYYY-MM.")],
    levy_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="The tax bureau's levy file (CSV)."),
    ] = None,
    bank_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="The bank statement (CSV).")
    ] = None,
    organization: Annotated[
        str | None,
        typer.Option(
            help="The union whose bank account the statement is (required with --bank-file); "
            "it also limits the levy check to levies received at or below it."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report as XLSX here.")] = None,
) -> None:
    """Month-end reconciliation: read models rebuilt against live, the ledger's levy
    receipts against the tax bureau's file, bank movements against the bank statement.
    Exits 1 when anything does not match."""
    month = Month.parse(period)
    if bank_file is not None and organization is None:
        raise CommandFailed("--bank-file needs --organization (whose bank account it is)")
    levy_rows = read_levy_file(levy_file) if levy_file else None
    bank_rows = read_bank_file(bank_file) if bank_file else None
    sections: list[tuple[str, Section]] = []
    with ledger_session() as ledger:
        read_models = ReadModels(ledger)
        try:
            report = _run_rebuild(read_models, check_only=False, keep_live=True)
            if organization is not None:
                read_models.organization(organization)  # NotFound: a one-line error
            if levy_rows is not None:
                sections.append(
                    ("levy", reconcile_levies(read_models, month, levy_rows, organization))
                )
            if bank_rows is not None:
                sections.append(
                    ("bank", reconcile_bank(read_models, organization, month, bank_rows))
                )
        finally:
            read_models.close()
    rebuild_dict: dict[str, Any] = report.as_dict()
    stderr_console.print(
        f"[bold]读模型重建核对[/bold]: position {report.position}, "
        f"{report.comparison.differing_rows} differing rows"
    )
    if not report.comparison.equal:
        _print_comparison(report)
    for _, section in sections:
        _print_section(section)
    if out is not None:
        out.write_bytes(workbook_bytes(str(month), rebuild_dict, sections))
        print(out)
    problems = [s.name for _, s in sections if not s.clean]
    if not report.comparison.equal:
        problems.insert(0, "read models")
    if problems:
        raise CommandFailed(f"{month}: differences found in {', '.join(problems)}")
    print(f"{month}: everything matches")
