"""`ledger serve`'s HTTP processes: uvicorn's own process manager (what `uvicorn --workers N`
runs) on one listening socket, which `ledger serve` binds before it starts anything.

Until this version each HTTP process listened on a socket of its own (SO_REUSEPORT), so that
the kernel spread connections evenly. Measured side by side in one sitting against uvicorn's
shared socket under the ingest load (scripts/bench/serving.py; figures in
docs/operations.md), it did not serve more requests per second, so the plain way stays.

What is added to uvicorn's manager: the metrics directory (a fresh PROMETHEUS_MULTIPROC_DIR
per start, a dead process marked in it: api/metrics.py), and in each HTTP process a watch on
the parent, so that a server killed with SIGKILL leaves no process holding the port.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from typing import Any

from fastapi import FastAPI
from uvicorn import Config
from uvicorn.supervisors import Multiprocess

from scripts.server.supervisor import watch_parent
from storage import gc_pause
from storage.settings import Settings

log = logging.getLogger("ledger.http")


class PortInUse(RuntimeError):
    pass


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound to (host, port); uvicorn makes it listen once an HTTP
    process has started. Bound before anything else starts, so that a taken port (another
    server, `ledger serve` or not) starts nothing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _config(settings: Settings, app: Any, *, factory: bool) -> Config:
    # log_config=None: the processes log JSON lines (api/logs.py), uvicorn's loggers too.
    return Config(
        app,
        factory=factory,
        workers=settings.workers,
        log_level="info",
        access_log=False,
        log_config=None,
    )


def serve_here(settings: Settings, sock: socket.socket) -> None:
    """One HTTP process: this one."""
    from uvicorn import Server

    Server(_config(settings, serving_app(settings), factory=False)).run(sockets=[sock])


def serve(settings: Settings, sock: socket.socket) -> None:
    """settings.workers HTTP processes on `sock`, until SIGTERM or SIGINT; a process that
    dies is started again by uvicorn's manager."""
    directory = tempfile.mkdtemp(prefix="ledger-metrics-")
    # Read by prometheus_client when the HTTP processes (started after this) import it.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        app = functools.partial(http_process_app, settings, os.getpid())
        config = _config(settings, app, factory=True)
        _Processes(config, sockets=[sock], metrics_directory=directory).run()
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)


class _Processes(Multiprocess):
    """uvicorn's manager, which also marks a dead process in the metrics directory."""

    def __init__(self, config: Config, sockets: list[socket.socket], metrics_directory: str):
        super().__init__(config, sockets)
        self.metrics_directory = metrics_directory

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                from prometheus_client import multiprocess

                # Drops the dead process's live gauges; its counters stay, so totals never
                # go down.
                multiprocess.mark_process_dead(pid, self.metrics_directory)


def http_process_app(settings: Settings, parent_pid: int) -> FastAPI:
    """In each HTTP process (uvicorn calls it there): JSON logs, the watch on the parent, and
    the application (serving_app)."""
    from api.logs import configure_logging

    configure_logging()

    def end() -> None:  # uvicorn's graceful shutdown, as on `kill <pid>`
        os.kill(os.getpid(), signal.SIGTERM)

    watch_parent(parent_pid, threading.Event(), end, "an HTTP process")
    return serving_app(settings)


def serving_app(settings: Settings) -> FastAPI:
    """The application of an HTTP process, built, with the collector then tuned for serving
    (storage/gc_pause.py): what building it made stays out of the collections."""
    from api.app import create_app

    app = create_app(settings)
    gc_pause.for_serving()
    return app
