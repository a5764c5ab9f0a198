"""`ledger import members F --organization CODE`: a roster file (CSV in UTF-8 or GB18030/GBK,
or XLSX) joined into one union, with the same row-level report as POST /v1/members/imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.roster import import_roster
from domain.privacy import mask
from scripts.common import CommandFailed, ledger_session, progress_bar, stderr_console

app = typer.Typer(help="Bulk imports.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="import")


@app.command("members")
def import_members(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The roster, CSV or XLSX.")
    ],
    organization: Annotated[str, typer.Option(help="The union the members join (its code).")],
    report: Annotated[
        Path | None, typer.Option(help="Also write the whole report as JSON to this file.")
    ] = None,
) -> None:
    """Bulk 入会 from a roster (身份证号, 姓名, 入会日期, 手机号, 农民工, 新就业形态, or the English
    names). Valid rows are stored even when others are refused; every refused row is listed
    with its row number (the header is row 1). Exits 1 if any row was refused."""
    with ledger_session() as ledger:
        ledger.unit_of_work().org(organization, field="organization")
        with progress_bar() as bar, file.open("rb") as stream:
            task = bar.add_task("joining members (rows)", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = import_roster(
                ledger, organization, stream, actor="cli:import", on_progress=progress
            )
    shown = mask(result)
    for row in shown["rejected"]:
        field = f" {row['field']}" if row.get("field") else ""
        stderr_console.print(f"row {row['row']}{field}: {row['reason']}", markup=False)
    if report is not None:
        report.write_text(json.dumps(shown, ensure_ascii=False, indent=2), encoding="utf-8")
    print(
        f"{organization}: {result['rows_total']} rows, {result['rows_accepted']} accepted, "
        f"{result['rows_rejected']} rejected; position {result['position']}"
    )
    if result["rows_rejected"]:
        raise CommandFailed(f"{result['rows_rejected']} of {result['rows_total']} rows refused")
