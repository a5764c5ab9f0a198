"""`ledger serve` (the HTTP service) and `ledger token create|list|revoke` (API tokens)."""

from __future__ import annotations

import datetime
import json
import logging
import signal
from enum import StrEnum
from typing import Annotated

import typer

from domain.access import DEFAULT_EXPIRY_DAYS
from scripts.common import ledger_session, load_settings, store_name
from service.tokens import MAX_EXPIRY_DAYS, Tokens
from storage.clock import CHINA

log = logging.getLogger("ledger.server")


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
    from api.logs import configure_logging
    from api.services import Services
    from scripts.server import http_processes
    from scripts.server.projection_process import ProjectionProcess

    settings = load_settings()
    updates = {"host": host, "port": port, "workers": workers, "projection_thread": False}
    settings = settings.model_copy(update={k: v for k, v in updates.items() if v is not None})
    configure_logging()
    try:
        sock = http_processes.listening_socket(settings.host, settings.port)
    except http_processes.PortInUse as exc:
        typer.echo(f"ledger: {exc}", err=True)
        raise typer.Exit(1) from None
    log.info(
        "serving on http://%s:%s (docs at /docs) with %s HTTP process(es) and a projection "
        "process; mint a token with: ledger token create --role admin",
        settings.host,
        sock.getsockname()[1],
        settings.workers,
    )
    # Keys, tables and read-model schema are created once here, before the other processes
    # start: left to them, they would race to create the same key files and tables.
    Services.open(settings).close()
    # The read models are kept current by one process of their own, not by a thread in each
    # HTTP process (scripts/server/projection_process.py).
    projection = ProjectionProcess(settings)
    projection.start()
    # uvicorn stops on SIGTERM, restores the handler it found and raises the signal again:
    # with this handler that ends in the `finally` below rather than an abrupt exit.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if settings.workers == 1:
            http_processes.serve_here(settings, sock)
        else:
            http_processes.serve(settings, sock)
    finally:
        projection.stop()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def token_create(
    role: Annotated[Role, typer.Option(help="clerk, auditor or admin.")],
    organization: Annotated[
        str | None,
        typer.Option(
            help="Organisation code: the token's scope is it and everything below. "
            "Omitted: deployment-wide."
        ),
    ] = None,
    pii: Annotated[bool, typer.Option("--pii", help="Allow unmasked personal data.")] = False,
    expires_in: Annotated[
        int,
        typer.Option(
            "--expires-in",
            metavar="DAYS",
            help=f"Days until the token expires (1 to {MAX_EXPIRY_DAYS}).",
        ),
    ] = DEFAULT_EXPIRY_DAYS,
) -> None:
    """Mints a token and prints it alone on the last line of stdout (it is shown only once);
    stderr names the store it was written to."""
    settings = load_settings()
    with ledger_session(settings) as ledger:
        tokens = Tokens(ledger)
        principal, token = tokens.mint(
            role=role.value, organization_code=organization, pii=pii, expires_in_days=expires_in
        )
        expires_at = tokens.describe(principal.token_id)["expires_at"]
    scope = principal.organization_code or "deployment-wide"
    typer.echo(f"ledger: token written to {store_name(settings)}", err=True)
    typer.echo(
        f"token {principal.token_id}: role {principal.role}, scope {scope}, "
        f"personal data {'unmasked' if principal.pii else 'masked'}, "
        f"expires {_when(expires_at)}"
    )
    typer.echo(token)


def _when(moment: datetime.datetime | None) -> str:
    """A moment as operators in China read it (RFC 3339, +08:00), or "-"."""
    return "-" if moment is None else moment.astimezone(CHINA).isoformat(timespec="seconds")


TOKEN_COLUMNS = ("id", "role", "scope", "pii", "created", "expires", "last used", "revoked")


def token_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per token.")] = False,
) -> None:
    """Every token without its secret: id, role, scope, pii, created, expires, last used
    (to about a minute), revoked."""
    with ledger_session() as ledger:
        tokens = Tokens(ledger).describe_all()
    if as_json:
        for t in tokens:
            typer.echo(
                json.dumps(
                    {k: _when(v) if isinstance(v, datetime.datetime) else v for k, v in t.items()},
                    ensure_ascii=False,
                )
            )
        return
    rows = [
        (
            t["id"],
            t["role"],
            t["organization_code"] or "deployment-wide",
            "yes" if t["pii"] else "no",
            _when(t["created_at"]),
            _when(t["expires_at"]),
            _when(t["last_used_at"]),
            _when(t["revoked_at"]),
        )
        for t in tokens
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(TOKEN_COLUMNS, *rows, strict=True)]
    for row in (TOKEN_COLUMNS, *rows):
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def token_revoke(
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (`ledger token list`).")
    ],
) -> None:
    """Revokes a token: every server process refuses it (401) within 5 seconds."""
    settings = load_settings()
    with ledger_session(settings) as ledger:
        revoked = Tokens(ledger).revoke(token_id)
    if revoked["already_revoked"]:
        typer.echo(
            f"ledger: token {revoked['id']} was revoked already, at {_when(revoked['revoked_at'])}",
            err=True,
        )
    else:
        typer.echo(f"ledger: token {revoked['id']} revoked in {store_name(settings)}", err=True)
    typer.echo(f"token {revoked['id']}: revoked {_when(revoked['revoked_at'])}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    tokens = typer.Typer(help="API tokens.", no_args_is_help=True)
    tokens.command("create")(token_create)
    tokens.command("list")(token_list)
    tokens.command("revoke")(token_revoke)
    app.add_typer(tokens, name="token")
