"""`ledger close` and `ledger reopen`: month-end close (月结, and the year-end close 年终结账 when
the month is December) and reopening the last closed month (反结账), as the HTTP API does them."""

from __future__ import annotations

from typing import Annotated

import typer

from scripts.common import ledger_session
from service.commands import ClosePeriod, ReopenPeriod

Organization = Annotated[str, typer.Option("--organization", help="the organisation's credit code")]
Period = Annotated[str, typer.Option("--period", help="the month, YYYY-MM")]


def close(organization: Organization, period: Period) -> None:
    """Closes a month of one organisation's books (months close in order, once ended)."""
    with ledger_session() as ledger:
        result = ledger.execute(
            ClosePeriod(organization_code=organization, period=period), actor="cli:close"
        )
    typer.echo(f"closed {result.body['period']} for {organization} (position {result.position})")


def reopen(
    organization: Organization,
    period: Period,
    reason: Annotated[str, typer.Option("--reason", help="why the month reopens")],
) -> None:
    """Reopens the last closed month of one organisation's books, with a reason."""
    with ledger_session() as ledger:
        result = ledger.execute(
            ReopenPeriod(organization_code=organization, period=period, reason=reason),
            actor="cli:reopen",
        )
    typer.echo(f"reopened {result.body['period']} for {organization} (position {result.position})")


def register(app: typer.Typer) -> None:
    app.command("close")(close)
    app.command("reopen")(reopen)
