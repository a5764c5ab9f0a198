"""`ledger rebuild --engine spark` and `ledger rollup`: the monthly rebuild on Apache Spark
from sealed exports (projections/spark/job.py) and the national roll-up of its outputs
(projections/spark/rollup.py). Needs the spark extra (pip install -e '.[spark]') and Java."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from projections.audit.seals import trusted_public_keys
from projections.read_models.rows import KNOWN_NOW_US, micros
from scripts.common import CommandFailed, get_settings, stderr_console
from storage.keys import configured_key


def register(app: typer.Typer) -> None:
    app.command("rollup")(rollup_command)


def _session(master: str) -> Any:
    try:
        from projections.spark.job import spark_session
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise CommandFailed(f"the spark extra is not installed ({exc})") from None
    return spark_session(master)


def spark_rebuild(
    *,
    exports: list[Path],
    deployments: list[str],
    out: Path | None,
    master: str,
    check: bool,
    json_out: Path | None,
) -> None:
    """The job over this store's export(s) (--export, keys and database from the settings)
    and over other deployments given as --deployment name=...,export=...,key-file=...,
    public-key=...[,database=URL]."""
    from projections.spark.job import DeploymentInput, JobRefused, parse_deployment, run_job

    if out is None:
        raise CommandFailed("--engine spark needs --out DIR (where the run's outputs go)")
    inputs = [parse_deployment(text) for text in deployments]
    if exports:
        settings = get_settings()
        key = configured_key(settings).key
        if key is None:
            raise CommandFailed("no encryption key configured: the export's payloads stay shut")
        keys = trusted_public_keys(settings)
        for n, export in enumerate(exports):
            inputs.append(
                DeploymentInput(
                    name="local" if len(exports) == 1 else f"local-{n + 1}",
                    export=export,
                    master_key=key,
                    public_keys=frozenset(keys),
                    database_url=settings.database_url if n == len(exports) - 1 else None,
                )
            )
    if not inputs:
        raise CommandFailed("--engine spark needs --export DIR or --deployment ...")
    spark = _session(master)
    try:
        result = run_job(spark, inputs, out)
    except JobRefused as exc:
        raise CommandFailed(f"the Spark rebuild stopped: {exc}") from None
    finally:
        spark.stop()
    report = result.as_dict()
    if json_out is not None:
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    for name, comparison in result.comparisons.items():
        position = result.live_positions.get(name)
        stderr_console.print(
            f"{name}: live read models at position {position}, export through "
            f"{result.verified[name]['through']}: "
            + ("same" if comparison.equal else f"{comparison.differing_rows} differing rows")
        )
        for diff in comparison.differences[:20]:
            stderr_console.print(f"  [red]{diff['table']} {diff['key']}[/red]")
    print(
        f"spark rebuild of {result.events:,} events in {result.seconds:.1f}s "
        f"({report['spark_rebuild_events_per_s']:,} events/s); outputs in {result.run_dir}"
    )
    if check and not result.equal:
        raise CommandFailed("the Spark rebuild differs from the live read models")


def rollup_command(
    run: Annotated[Path, typer.Argument(help="A run of the Spark rebuild, or its --out DIR.")],
    as_of: Annotated[str, typer.Option("--as-of", help="01表 and membership as of YYYY-MM-DD.")],
    date_from: Annotated[
        str | None, typer.Option("--from", help="02表 from YYYY-MM-DD (default 1 January).")
    ] = None,
    known_at: Annotated[
        str | None,
        typer.Option(help="As known at this moment (ISO 8601, UTC if no zone); default now."),
    ] = None,
    master: Annotated[str, typer.Option(help="Spark master URL.")] = "local[2]",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """The national roll-up (全总汇总) of a Spark rebuild's outputs: 01表, 02表 and membership
    statistics per deployment, per level and over all deployments."""
    from projections.spark import rollup
    from projections.spark.job import latest_run

    try:
        day = datetime.date.fromisoformat(as_of)
        first = datetime.date.fromisoformat(date_from) if date_from else day.replace(month=1, day=1)
        k_us = (
            KNOWN_NOW_US if known_at is None else micros(datetime.datetime.fromisoformat(known_at))
        )
        run_dir = latest_run(run)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandFailed(str(exc)) from None
    spark = _session(master)
    try:
        report = rollup.rollup(spark, run_dir, as_of=day, date_from=first, known_at_us=k_us)
    finally:
        spark.stop()
    if json_out is not None:
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(rollup.text(report), end="")
