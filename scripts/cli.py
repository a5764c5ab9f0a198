"""The `ledger` console script: one typer app; each command lives in its own module.

A command module defines `register(app)` and is listed in COMMAND_MODULES. Expected failures
end here as one line on stderr and exit code 1 (see scripts/common.py).
"""

from __future__ import annotations

import importlib
import sys

import typer

from scripts.common import EXPECTED_ERRORS, report_failure

# Modules that add commands to the app, in the order their commands appear in --help.
COMMAND_MODULES = [
    "scripts.cmd_demo",
    "scripts.cmd_server",
    "scripts.cmd_projections",
    "scripts.cmd_import",
    "scripts.cmd_audit",
    "scripts.cmd_books",
    "scripts.cmd_spark",
    "scripts.cmd_bench",
]


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="ledger",
        help="工会会员与经费账簿: the trade-union membership and fund ledger.",
        no_args_is_help=True,
        add_completion=False,
        # Expected failures are reported by main() in one line; others keep a plain traceback.
        pretty_exceptions_enable=False,
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    app = build_app()
    try:
        app(args=argv, prog_name="ledger")
    except (*EXPECTED_ERRORS, KeyboardInterrupt) as exc:
        sys.exit(report_failure(exc))


if __name__ == "__main__":
    main()
