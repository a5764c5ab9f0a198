"""`ledger audit seal` and `ledger audit verify`: the tamper-evident audit trail (防篡改审计).

See projections/audit.py for what a seal proves and how often to make one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from projections.audit import AuditTrail
from projections.audit_seals import AuditKeyError, SealFileError
from scripts.common import CommandFailed, ledger_session, progress_bar

MAX_PROBLEMS_SHOWN = 20


def seal(
    append_to: Annotated[
        Path | None,
        typer.Option("--append-to", help="Also append the seal as one JSON line to this file "
                                         "(keep it outside the system: a seal file for "
                                         "`ledger audit verify --seal-file`)."),
    ] = None,
) -> None:
    """Seals the chain up to now and prints the seal as one JSON line on stdout."""
    with ledger_session() as ledger:
        try:
            made = AuditTrail(ledger).seal()
        except AuditKeyError as exc:
            raise CommandFailed(str(exc)) from None
        # ChainContradictsSeal is a domain rule: cli.main() reports it in one line.
    line = json.dumps(made, ensure_ascii=False, sort_keys=True)
    if append_to is not None:
        try:
            with append_to.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            raise CommandFailed(f"sealed, but cannot append to {append_to}: {exc}") from None
    typer.echo(
        f"sealed through position {made['position']} ({made['event_count']} events); "
        f"public key {made['public_key']}",
        err=True,
    )
    typer.echo(line)


def _summary(report: dict[str, Any]) -> str:
    if report["ok"]:
        return f"ok: {report['reason']}"
    lines = [f"FAILED at position {report['first_bad_position']}: {report['reason']}"]
    shown = report["problems"][:MAX_PROBLEMS_SHOWN]
    lines += [f"  {p['position']}: [{p['kind']}] {p['reason']}" for p in shown]
    if report["problem_count"] > len(shown):
        lines.append(f"  … and {report['problem_count'] - len(shown)} more")
    return "\n".join(lines)


def verify(
    seal_file: Annotated[
        Path | None,
        typer.Option("--seal-file", help="Seals kept outside the system (JSON Lines, or a JSON "
                                         "array); each must verify and match the store."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Recomputes the chain from the first event and checks every seal; exit 1 on any damage."""
    with ledger_session() as ledger, progress_bar(transient=True) as bar:
        task = bar.add_task("verifying the audit chain", total=None)

        def on_progress(position: int, head_position: int) -> None:
            bar.update(task, completed=position, total=head_position)

        try:
            report = AuditTrail(ledger).verify(seal_file, on_progress=on_progress)
        except (SealFileError, AuditKeyError) as exc:
            raise CommandFailed(str(exc)) from None
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else _summary(report))
    if not report["ok"]:
        raise CommandFailed(
            f"audit verification failed at position {report['first_bad_position']}: "
            f"{report['reason']}"
        )


def register(app: typer.Typer) -> None:
    audit = typer.Typer(help="The tamper-evident audit trail: seals and verification.",
                        no_args_is_help=True)
    audit.command("seal")(seal)
    audit.command("verify")(verify)
    app.add_typer(audit, name="audit")
