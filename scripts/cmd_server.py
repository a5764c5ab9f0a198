"""`ledger serve` (the HTTP service) and `ledger token create` (API tokens)."""

from __future__ import annotations

import signal
from enum import StrEnum
from typing import Annotated

import typer

from scripts.common import ledger_session, load_settings


class Role(StrEnum):
    clerk = "clerk"
    auditor = "auditor"
    admin = "admin"


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (LEDGER_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (LEDGER_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Server processes (LEDGER_WORKERS).")
    ] = None,
) -> None:
    """The HTTP service (OpenAPI at /docs)."""
    import uvicorn

    from api import http_processes
    from api.app import create_app
    from api.projection_process import ProjectionProcess
    from api.services import Services

    settings = load_settings()
    updates = {"host": host, "port": port, "workers": workers, "projection_thread": False}
    settings = settings.model_copy(update={k: v for k, v in updates.items() if v is not None})
    typer.echo(
        f"ledger: serving on http://{settings.host}:{settings.port} (docs at /docs) with "
        f"{settings.workers} process(es) and a projection process; mint a token with: "
        "ledger token create --role admin",
        err=True,
    )
    holder = None
    if settings.workers > 1:
        try:
            holder = http_processes.hold_port(settings)
        except http_processes.PortInUse as exc:
            typer.echo(f"ledger: {exc}", err=True)
            raise typer.Exit(1) from None
    # Keys, tables and read-model schema are created once here, before the other processes
    # start: left to them, they would race to create the same key files and tables.
    Services.open(settings).close()
    # The read models are kept current by one process of their own, not by a thread in each
    # server process (api/projection_process.py).
    projection = ProjectionProcess(settings)
    projection.start()
    # uvicorn stops on SIGTERM, restores the handler it found and raises the signal again:
    # with this handler that ends in the `finally` below rather than an abrupt exit.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if settings.workers == 1:
            uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                        log_level="info", access_log=False)
            return
        assert holder is not None
        http_processes.serve(settings, holder)
    finally:
        projection.stop()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def token_create(
    role: Annotated[Role, typer.Option(help="clerk, auditor or admin.")],
    organization: Annotated[
        str | None,
        typer.Option(help="Organisation code: the token's scope is it and everything below. "
                          "Omitted: deployment-wide."),
    ] = None,
    pii: Annotated[bool, typer.Option("--pii", help="Allow unmasked personal data.")] = False,
) -> None:
    """Mints a token and prints it alone on the last line of stdout (it is shown only once)."""
    from service.tokens import Tokens

    with ledger_session() as ledger:
        principal, token = Tokens(ledger).mint(
            role=role.value, organization_code=organization, pii=pii
        )
    scope = principal.organization_code or "deployment-wide"
    typer.echo(f"token {principal.token_id}: role {principal.role}, scope {scope}, "
               f"personal data {'unmasked' if principal.pii else 'masked'}")
    typer.echo(token)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    tokens = typer.Typer(help="API tokens.", no_args_is_help=True)
    tokens.command("create")(token_create)
    app.add_typer(tokens, name="token")
