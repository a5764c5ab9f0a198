"""`ledger audit seal|verify|export-seals|public-key` and `ledger export`: the tamper-evident
audit trail (防篡改审计) and sealed exports of the log.

See projections/audit/trail.py for what a seal proves and how often to make one, and
projections/audit/export.py for what an export holds and how it verifies offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from projections.audit.seals import AuditKeyError, SealFileError, trusted_public_keys
from projections.audit.trail import AuditTrail
from scripts.common import CommandFailed, ledger_session, load_settings, progress_bar

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
    export_dir: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Verify a sealed export (`ledger export --out DIR`) instead of the store, "
            "offline: no database is opened.",
        ),
    ] = None,
) -> None:
    """Recomputes the chain from the first event and checks every seal; exit 1 on any damage."""
    if export_dir is not None:
        if seal_file is not None:
            raise CommandFailed("--seal-file checks the store; an export carries its own seals")
        _verify_export(export_dir, as_json)
        return
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


def _verify_export(directory: Path, as_json: bool) -> None:
    from projections.audit.export import ExportDamaged, verify_export

    try:
        trusted = trusted_public_keys(load_settings())
    except AuditKeyError as exc:
        raise CommandFailed(str(exc)) from None
    with progress_bar(transient=True) as bar:
        task = bar.add_task("verifying the export", total=None)

        def on_progress(position: int, head_position: int) -> None:
            bar.update(task, completed=position, total=head_position)

        try:
            report = verify_export(directory, trusted, on_progress=on_progress)
        except ExportDamaged as exc:
            if as_json:
                failed = {"ok": False, "segment": exc.segment, "reason": exc.reason}
                typer.echo(json.dumps(failed, ensure_ascii=False, indent=2))
            raise CommandFailed(f"export verification failed: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    unsealed = report["unsealed_segments"]
    note = (
        f"; {len(unsealed)} segment(s) after the newest seal are not covered yet (未封印): "
        + ", ".join(unsealed)
        if unsealed
        else ""
    )
    typer.echo(
        f"ok: {report['segments_checked']} segments, {report['events_checked']} events after "
        f"position {report['starts_after']} through {report['through']} match the chain; "
        f"proven by signed seals through position {report['proven_through']}{note}"
    )


def export(
    out: Annotated[
        Path, typer.Option("--out", help="The export's directory (created if missing).")
    ],
    after: Annotated[
        int | None,
        typer.Option(
            "--after",
            min=0,
            help="Export the events after this position. Default: go on from the export "
            "already in --out (or from the first event).",
        ),
    ] = None,
    segment_events: Annotated[
        int | None,
        typer.Option(
            "--segment-events",
            min=1,
            help="Events per segment (default LEDGER_EXPORT_SEGMENT_EVENTS, 100000).",
        ),
    ] = None,
) -> None:
    """Writes the event log as sealed, immutable Parquet segments (payloads stay encrypted),
    verifiable offline with `ledger audit verify --export DIR`."""
    from projections.audit.export import ExportDamaged, ExportError, export_log

    with ledger_session() as ledger, progress_bar(transient=True) as bar:
        task = bar.add_task("exporting the event log", total=None)

        def on_progress(position: int, head_position: int) -> None:
            bar.update(task, completed=position, total=head_position)

        try:
            result = export_log(
                ledger, out, after=after, segment_events=segment_events, on_progress=on_progress
            )
        except (ExportError, ExportDamaged) as exc:
            raise CommandFailed(str(exc)) from None
        except OSError as exc:
            raise CommandFailed(f"cannot write the export to {out}: {exc}") from None
    unsealed = (
        f"; {result.unsealed_segments} segment(s) not covered by a seal yet (未封印: "
        "`ledger audit seal`, then export again)"
        if result.unsealed_segments
        else ""
    )
    typer.echo(
        f"{result.events_written} events in {len(result.segments_written)} new segment(s); "
        f"{out} now holds the log through position {result.through}{unsealed}"
    )


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
    app.command("export")(export)
