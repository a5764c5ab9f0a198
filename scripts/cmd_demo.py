"""`ledger demo` (load a synthetic deployment) and `ledger summary` (what a store holds)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from scripts.common import (
    CommandFailed,
    ledger_session,
    progress_bar,
    stderr_console,
    stdout_console,
)
from scripts.demo_data import DEMO_YEAR, build_plan
from scripts.demo_loader import DemoLoader, LoadStats
from scripts.demo_summary import deployment_root, summarize, summary_tables
from service.application import Ledger


class Size(StrEnum):
    county = "county"
    city = "city"
    province = "province"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("summary")(summary)


SizeOption = Annotated[
    Size,
    typer.Option(
        help="The deployment's root: a county, city or province federation of trade unions."
    ),
]
SeedOption = Annotated[int, typer.Option(help="The same seed loads the same deployment.")]
ScaleOption = Annotated[
    float,
    typer.Option(
        min=0.0001,
        max=1.0,
        help="Load this fraction of the realistic size (1.0: a county has about 1,000 base "
        "unions and 105,000 members; a city 11 counties; a province 88).",
    ),
]


def demo(size: SizeOption = Size.county, seed: SeedOption = 1, scale: ScaleOption = 1.0) -> None:
    """Load a realistic synthetic deployment and a year of its business into an empty store.

    Organisations, real-name members, levy policies, and a year of dues, levies, remittances,
    subsidies, expenses, transfers, retentions, exits, a reversal and month closes, all through
    the same commands as the HTTP API (actor "cli:demo").
    """
    with ledger_session() as ledger:
        existing = deployment_root(ledger)
        if existing is not None:
            raise CommandFailed(
                f"the store already holds a deployment (root {existing}); demo loads only "
                "into an empty store (an interrupted demo leaves a partial one: start afresh)"
            )
        plan = build_plan(size.value, scale, seed)
        stderr_console.print(
            f"demo: {size.value} deployment, seed {seed}, scale {scale}: "
            f"{len(plan.organizations) + len(plan.in_year_organizations):,} organisations, "
            f"{plan.member_count:,} people, a year of business ({DEMO_YEAR})"
        )
        with progress_bar() as progress:
            stats = DemoLoader(ledger, plan, progress).run()
        stdout_console().print(_load_table(stats))
        _print_summary(ledger)


def summary() -> None:
    """Print what the store holds: organisations, members, vouchers, the root's funds."""
    with ledger_session() as ledger:
        _print_summary(ledger)


def _print_summary(ledger: Ledger) -> None:
    started = time.perf_counter()
    with progress_bar(transient=True) as progress:
        task = progress.add_task("统计 reading events", total=ledger.head_position())
        result = summarize(ledger, lambda n: progress.advance(task, n))
    out = stdout_console()
    for table in summary_tables(result):
        out.print(table)
    out.print(f"summary read {result.events:,} events in {time.perf_counter() - started:.1f} s")


PHASES = {
    "organisations": "founding the tree",
    "members": "members joined before the year",
    "year": "a year of business",
}


def _load_table(stats: LoadStats) -> Table:
    table = Table(title="demo load 载入统计")
    table.add_column("command")
    table.add_column("count", justify="right")
    for kind, count in sorted(stats.commands.items()):
        table.add_row(kind, f"{count:,}")
    total, seconds = stats.total_commands, stats.total_seconds
    table.add_row("all commands", f"{total:,}", style="bold")
    table.add_row("seconds", f"{seconds:,.1f}")
    table.add_row("commands/s", f"{total / seconds:,.0f}" if seconds else "-")
    for phase, label in PHASES.items():
        count, phase_s = stats.phase_commands[phase], stats.seconds[phase]
        rate = f"{count / phase_s:,.0f}/s" if phase_s else "-"
        table.add_row(f"{label}: commands, s, rate", f"{count:,} in {phase_s:,.1f} s, {rate}")
    for kind, count in sorted(stats.skipped.items()):
        table.add_row(f"skipped {kind} (funds short)", f"{count:,}")
    return table
