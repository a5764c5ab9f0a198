"""`ledger project`, `ledger rebuild [--check]` and `ledger reconcile`: the read side's
commands (projection worker, rebuild with comparison, month-end reconciliation)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.reconciliation_files import read_file
from api.reconciliations import run_reconciliation
from domain.organizations import Deployment
from domain.period import Month
from domain.privacy import mask
from domain.reconciliation import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS
from projections.read_models.models import ReadModels
from projections.read_models.worker import ProjectionWorker
from projections.reconciliation.rebuild import RebuildReport, rebuild
from projections.reconciliation.report import csv_bytes, text_report, workbook_bytes
from scripts.common import (
    CommandFailed,
    ledger_session,
    memory_mb,
    progress_bar,
    stderr_console,
)
from service.application import Ledger

MAX_LISTED = 20


def register(app: typer.Typer) -> None:
    app.command("project")(project)
    app.command("rebuild")(rebuild_command)
    app.command("reconcile")(reconcile)


def project(
    once: Annotated[bool, typer.Option(help="Catch up once and exit.")] = False,
    batch: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100_000,
            help="Events applied per transaction (default 5,000; 20,000 in a long catch-up"
            " on PostgreSQL).",
        ),
    ] = None,
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
    engine: Annotated[
        str,
        typer.Option(help="local: here, into shadow tables; spark: from sealed exports."),
    ] = "local",
    export: Annotated[
        list[Path] | None,
        typer.Option(help="spark: this store's export (`ledger export --out DIR`)."),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            help="spark: another deployment, name=N,export=DIR,key-file=F,public-key=K"
            "[,database=URL]."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="spark: where the run is written.")] = None,
    master: Annotated[str, typer.Option(help="spark: the master URL.")] = "local[2]",
) -> None:
    """Rebuild every read model from the first event beside the live ones, compare them
    by content (per table and per organisation), and switch over atomically. With
    --engine spark: rebuild from sealed exports on Spark, write the outputs and compare them
    with the live read models (never switched in)."""
    if engine == "spark":
        from scripts.cmd_spark import spark_rebuild

        spark_rebuild(
            exports=export or [],
            deployments=deployment or [],
            out=out,
            master=master,
            check=check,
            json_out=json_out,
        )
        return
    if engine != "local":
        raise CommandFailed("--engine is local or spark")
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


# What a full rebuild runs at, for the estimate printed before one starts (docs/benchmarks.md:
# about 20,000 events/s on a shared 2-core machine).
REBUILD_EVENTS_PER_S = 20_000


def _root_code(ledger: Ledger) -> str:
    deployment = ledger.unit_of_work().get(Deployment.ID)
    if deployment is None:
        raise CommandFailed("the store has no organisations yet; name one with --organization")
    return str(deployment.root_code)


def _full_comparison(read_models: ReadModels) -> dict[str, Any]:
    head = read_models.ledger.head_position()
    stderr_console.print(
        f"rebuilding every read model from {head:,} events to compare with the live ones: "
        f"about {max(1, round(head / REBUILD_EVENTS_PER_S))} s"
    )
    report = _run_rebuild(read_models, check_only=False, keep_live=True)
    comparison = report.comparison.as_dict()
    return {
        "method": "rebuild",
        "position": report.position,
        "events": report.events,
        "seconds": round(report.seconds, 3),
        "equal": comparison["equal"],
        "differing_rows": comparison["differing_rows"],
        "tables": comparison["tables"],
        "differences": [
            {"table": d["table"], "key": str(d["key"])} for d in comparison["differences"]
        ],
    }


def reconcile(
    period: Annotated[str, typer.Option(help="The month, YYYY-MM.")],
    levy_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="The tax bureau's levy file (CSV or XLSX)."),
    ] = None,
    bank_file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="The bank statement (CSV or XLSX)."),
    ] = None,
    organization: Annotated[
        str | None,
        typer.Option(
            help="The union reconciled: its bank account is the statement's, and its levies "
            "are those it or a union below it received (default: the deployment's root)."
        ),
    ] = None,
    window_days: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_WINDOW_DAYS, help="Match the same amount up to this many days apart."
        ),
    ] = DEFAULT_WINDOW_DAYS,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the whole report here (.xlsx, or .csv)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Differences printed; the rest are counted.")
    ] = MAX_LISTED,
    full_rebuild: Annotated[
        bool,
        typer.Option(
            "--full-rebuild",
            help="Rebuild every read model from the first event and compare it with the live "
            "ones (says how long first), instead of checking the union's books against them.",
        ),
    ] = False,
) -> None:
    """Month-end reconciliation, the same run as POST /v1/reconciliations, stored as a run:
    the union's books against the read models, its tax-collected levies against the tax
    bureau's file, its bank movements against the bank statement. Prints every difference
    (or the first --limit and where the whole report is), exits 1 when there are any."""
    month = Month.parse(period)
    files = []
    for path, kind in ((levy_file, "levy"), (bank_file, "bank")):
        if path is not None:
            with path.open("rb") as stream:
                files.append(read_file(stream, kind, path.name))
    with ledger_session() as ledger:
        code = organization or _root_code(ledger)
        read_models = ReadModels(ledger)
        try:
            ledger.unit_of_work().org(code, field="organization")
            comparison = _full_comparison(read_models) if full_rebuild else None
            run, _ = run_reconciliation(
                ledger,
                read_models,
                organization=code,
                period=str(month),
                files=files,
                window_days=window_days,
                actor="cli:reconcile",
                comparison=comparison,
            )
        finally:
            read_models.close()
    run = mask(run)  # what the console and the files show, as a token without pii sees it
    lines, left_out = text_report(run, limit)
    for line in lines:
        print(line)
    if out is None and left_out:
        out = Path("var") / f"reconciliation-{code}-{month}-{run['run_id'][:8]}.xlsx"
        out.parent.mkdir(parents=True, exist_ok=True)
    if out is not None:
        out.write_bytes(csv_bytes(run) if out.suffix.lower() == ".csv" else workbook_bytes(run))
    if left_out:
        print(f"  ... and {left_out} more differences: the whole report is in {out}")
    elif out is not None:
        print(f"the whole report is in {out}")
    total = run["differences_total"]
    if total:
        raise CommandFailed(
            f"{month} {code}: {total} differences (run {run['run_id']}); "
            f"GET /v1/reconciliations/{run['run_id']} shows it"
        )
    print(f"{month} {code}: everything matches (run {run['run_id']})")
