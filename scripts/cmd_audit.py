"""`ledger audit seal|verify|export-seals|public-key`: the tamper-evident audit trail (防篡改审计).

See projections/audit/trail.py for what a seal proves and how often to make one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from projections.audit.seals import AuditKeyError, SealFileError
from projections.audit.trail import AuditTrail
from scripts.common import CommandFailed, ledger_session, progress_bar

MAX_PROBLEMS_SHOWN = 20


def seal(
    append_to: Annotated[
        Path | None,
        typer.Option(
            "--append-to",
            help="Also append the seal as one JSON line to this file "
            "(keep it outside the system: a seal file for "
            "`ledger audit verify --seal-file`).",
        ),
    ] = None,
) -> None:
    """Seals the chain up to now and prints the seal as one JSON line on stdout."""
    with ledger_session() as ledger:
        try:
            made = AuditTrail(ledger).seal()
        except AuditKeyError as exc:
            raise CommandFailed(str(exc)) from None
        # ChainContradictsSeal is a domain rule: cli.main() reports it in one line.
    assert made is not None  # an unconditional seal is always made
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


def _where(report: dict[str, Any]) -> str:
    position = report["first_bad_position"]
    return "" if position is None else f" at position {position}"


def _summary(report: dict[str, Any]) -> str:
    if report["ok"]:
        return f"ok: {report['reason']}"
    lines = [f"FAILED{_where(report)}: {report['reason']}"]
    shown = report["problems"][:MAX_PROBLEMS_SHOWN]
    lines += [f"  {p['position']}: [{p['kind']}] {p['reason']}" for p in shown]
    if report["problem_count"] > len(shown):
        lines.append(f"  … and {report['problem_count'] - len(shown)} more")
    return "\n".join(lines)


def verify(
    seal_file: Annotated[
        Path | None,
        typer.Option(
            "--seal-file",
            help="Seals kept outside the system (JSON Lines, or a JSON "
            "array); each must verify and match the store.",
        ),
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
        raise CommandFailed(f"audit verification failed{_where(report)}: {report['reason']}")


def export_seals(
    seal_file: Annotated[
        Path,
        typer.Argument(help="The file to write (JSON Lines); seals it already holds are kept."),
    ],
) -> None:
    """Writes every seal to a file kept outside the system, for `ledger audit verify
    --seal-file`. Seals the file already holds are kept, even if the store lost them."""
    with ledger_session() as ledger:
        try:
            written, only_in_file = AuditTrail(ledger).export_seals(seal_file)
        except (SealFileError, OSError) as exc:
            raise CommandFailed(f"cannot export the seals to {seal_file}: {exc}") from None
    note = (
        f"; {only_in_file} of them are in the file but no longer in the store "
        "(封印记录被删除: run `ledger audit verify --seal-file`)"
        if only_in_file
        else ""
    )
    typer.echo(f"{written} seals in {seal_file}{note}", err=True)


def public_key() -> None:
    """Prints the audit signing key's public key (base64 of its 32 raw bytes), creating the
    signing key if there is none yet: set LEDGER_AUDIT_PUBLIC_KEY to it wherever seals are
    verified, from a copy kept outside the database."""
    with ledger_session() as ledger:
        try:
            text = AuditTrail(ledger).public_key(create=True)
        except AuditKeyError as exc:
            raise CommandFailed(str(exc)) from None
    typer.echo(text)


def register(app: typer.Typer) -> None:
    audit = typer.Typer(
        help="The tamper-evident audit trail: seals and verification.", no_args_is_help=True
    )
    audit.command("seal")(seal)
    audit.command("verify")(verify)
    audit.command("export-seals")(export_seals)
    audit.command("public-key")(public_key)
    app.add_typer(audit, name="audit")
