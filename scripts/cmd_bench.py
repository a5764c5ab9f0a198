"""`ledger bench`: the performance suite (see scripts/bench/), JSON out, a table on stderr."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from scripts.common import progress_bar

ADMIN_URL_ENV = "LEDGER_BENCH_DATABASE_URL"


class Backend(StrEnum):
    postgres = "postgres"
    sqlite = "sqlite"


class Largest(StrEnum):
    county = "county"
    city = "city"


def bench(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Scaled-down sizes, under 5 minutes (the JSON says which)."),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here (default: stdout).")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="A PostgreSQL server to run on, as a URL to any database there: the bench "
            f"creates its own database beside it and drops it afterwards ({ADMIN_URL_ENV}; "
            "default postgresql://postgres@127.0.0.1:5432/postgres)."
        ),
    ] = None,
    backend: Annotated[
        Backend,
        typer.Option(
            help="The store under test: PostgreSQL (the targets' backend) or a SQLite file."
        ),
    ] = Backend.postgres,
    largest: Annotated[
        Largest,
        typer.Option(
            help="The largest store the full run loads and rebuilds (a city takes hours on two "
            "cores); the province is always extrapolated from the sizes measured."
        ),
    ] = Largest.city,
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the README's table (Markdown) here.")
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option("--smoke", hidden=True, help="The smallest sizes (the test suite's run)."),
    ] = False,
    province_scale: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            max=1.0,
            help="Also load a province at this scale (0.03: 2,926 organisations, 278,421 "
            "people) and time its load and the reads over its root's subtree: statement, "
            "roll page, roll summary (in process); then rebuild it (from 0.05, over a "
            "million events: enough to extrapolate the rebuild's memory to 10^7).",
        ),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            help="Sample every measurement with py-spy into this directory (collapsed stacks "
            "and a summary each; the JSON gets the summaries). Figures of a profiled run "
            "are a little lower."
        ),
    ] = None,
) -> None:
    """Benchmark ingest, roster import, catch-up, rebuild and read latencies against the raw
    database ceilings, on a store of its own and a `ledger serve` subprocess."""
    from scripts.bench.config import FULL, QUICK, SMOKE
    from scripts.bench.database import DEFAULT_ADMIN_URL
    from scripts.bench.harness import run_bench
    from scripts.bench.profiling import ProfilerUnavailable, py_spy
    from scripts.bench.report import markdown_table

    if profile is not None:
        try:
            py_spy()
        except ProfilerUnavailable as exc:
            typer.echo(f"ledger bench: {exc}", err=True)
            raise typer.Exit(2) from None
    config = SMOKE if smoke else QUICK if quick else FULL
    if largest is Largest.county:
        config = replace(config, extra_sizes=())
    if province_scale is not None:
        config = replace(config, province_scale=province_scale)
    admin_url = database_url or os.environ.get(ADMIN_URL_ENV) or DEFAULT_ADMIN_URL
    with progress_bar(transient=True) as bar:
        result = run_bench(
            config,
            admin_url,
            progress=bar,
            backend=backend.value,
            note=lambda line: bar.console.print(line, markup=False),
            profile_dir=profile,
        )
    text = json.dumps(result, ensure_ascii=False, indent=2, default=str)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")
    table = markdown_table(result)
    if markdown is not None:
        markdown.write_text(table, encoding="utf-8")
    typer.echo(table, err=True)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
