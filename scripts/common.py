"""What every `ledger` command shares: settings, opening the ledger, failures, progress bars.

A command fails with a one-line reason on stderr and a non-zero exit code. Expected failures
(a domain rule, bad settings, an unreachable database) raise; cli.main() turns them into that
line. Anything else is a defect and keeps its traceback.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import pydantic
from eventsourcing.persistence import MapperDeserialisationError, PersistenceError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from domain.errors import DomainError
from domain.privacy import mask_text
from service.application import Ledger
from storage.key_check import StoreKeyError
from storage.payload_binding import PayloadBindingError
from storage.settings import Settings, get_settings

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
MAX_REASON_LENGTH = 400

# Progress bars and notes go to stderr, so that stdout carries only a command's result.
stderr_console = Console(stderr=True)
# Piped output keeps wide tables on one line each, so that they stay readable and greppable.
PIPED_WIDTH = 140


def stdout_console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPED_WIDTH)
    return console


class CommandFailed(Exception):
    """An expected failure of a command, stated in the user's terms."""


class ConfigurationError(CommandFailed):
    """The settings are wrong, or the store they name cannot be opened."""


def load_settings() -> Settings:
    """The same settings as the server (LEDGER_* environment variables and .env)."""
    try:
        return get_settings()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        message = f"invalid setting LEDGER_{field.upper()}: {first['msg']}"
        raise ConfigurationError(message) from None


def redacted_url(url: str) -> str:
    """The database URL without its password, fit for an error message."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunparse(parts._replace(netloc=netloc))


def store_name(settings: Settings) -> str:
    """Where the ledger's data lives, for an operator: the SQLite file's absolute path, or the
    database URL without its password."""
    url = settings.database_url
    parts = urlparse(url)
    if parts.scheme == "sqlite":
        # As storage/'s eventsourcing_env() reads the URL.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc:
            path = parts.netloc + "/" + path
        return f"the SQLite file {Path(path).resolve()}" if path not in ("", ":memory:") else url
    return f"the database {redacted_url(url)}"


def _postgres_reason(url: str) -> str | None:
    """The server's own reason for refusing a connection (eventsourcing's pool hides it)."""
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def open_ledger(settings: Settings | None = None) -> Ledger:
    """The ledger on the configured store, or a ConfigurationError naming what is wrong."""
    settings = settings or load_settings()
    url = settings.database_url
    try:
        return Ledger(settings)
    except PersistenceError as exc:
        reason = str(exc) or type(exc).__name__
        if urlparse(url).scheme in ("postgresql", "postgres"):
            reason = _postgres_reason(url) or reason
        raise ConfigurationError(f"cannot open the store {redacted_url(url)}: {reason}") from None
    except StoreKeyError as exc:  # names the key's source and the store itself
        raise ConfigurationError(str(exc)) from None
    except (ValueError, OSError) as exc:
        # ValueError: an unknown URL scheme or a malformed key; OSError: the key file.
        raise ConfigurationError(f"cannot open the store {redacted_url(url)}: {exc}") from None


@contextmanager
def ledger_session(settings: Settings | None = None) -> Iterator[Ledger]:
    """Opens the ledger for one command and closes it (and its connections) afterwards."""
    ledger = open_ledger(settings)
    try:
        yield ledger
    finally:
        ledger.close()


# Failures that are a user's or an operator's to fix: one line, no traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    CommandFailed,
    DomainError,
    StoreKeyError,  # a wrong key, or no key file beside a store with events (ledger serve)
    MapperDeserialisationError,
    PersistenceError,
    psycopg.OperationalError,
    sqlite3.OperationalError,
)


def one_line(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        text = exc.message
    elif isinstance(exc, PayloadBindingError):
        text = f"{exc} (run `ledger audit verify`)"
    elif isinstance(exc, MapperDeserialisationError):
        text = (
            "cannot decrypt the stored events: this store was written with another "
            "encryption key (check LEDGER_ENCRYPTION_KEY or LEDGER_KEY_FILE)"
        )
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, PersistenceError | psycopg.OperationalError | sqlite3.OperationalError):
        text = f"database error: {text}"
    # A reason may echo what was typed (an identity or mobile number in a value).
    text = mask_text(" ".join(text.split()))
    return text if len(text) <= MAX_REASON_LENGTH else text[: MAX_REASON_LENGTH - 1] + "…"


def report_failure(exc: BaseException) -> int:
    """Writes the one-line reason to stderr and returns the exit code to use."""
    if isinstance(exc, KeyboardInterrupt):
        print("ledger: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"ledger: error: {one_line(exc)}", file=sys.stderr)
    return EXIT_FAILURE


class RateColumn(ProgressColumn):
    """Steps per second, the figure an operator compares between runs."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def progress_bar(*, transient: bool = False) -> Progress:
    """The progress bar every long command shows (on stderr; silent when not a terminal)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        transient=transient,
    )


def memory_mb(pid: int | str = "self", field: str = "VmHWM") -> float | None:
    """A memory figure of a process from /proc (Linux), in MB: VmHWM, the peak resident set
    of the program the process runs now, or VmRSS, the current one. None elsewhere, or once
    the process has gone. (getrusage's ru_maxrss is no substitute for a program started from a
    bigger one: it also counts the parent's pages the child held between fork and exec.)"""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)  # kilobytes
    return None
