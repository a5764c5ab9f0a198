"""`ledger serve --workers N` (N > 1): N HTTP processes, each listening on the same port with a
socket of its own (SO_REUSEPORT), so that the kernel spreads new connections evenly over them.

uvicorn's own `--workers` shares one listening socket among its processes, and the event loop
of whichever process wakes first accepts every connection then waiting. Clients that open
their keep-alive connections together (a load balancer's pool, the benchmark's clients) land
unevenly: 13 to 3 in an ingest run with 16 clients, 39 to 1 for 40 connections opened at once
(tests/api/test_http_processes.py); the busier process's GIL then caps the whole server. Its
processes also outlived a SIGKILLed parent and went on holding the port. Linux only:
elsewhere SO_REUSEPORT does not spread connections.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable

from scripts.server.supervisor import SupervisedProcess, watch_parent
from storage.settings import Settings

log = logging.getLogger("ledger.http")


class PortInUse(RuntimeError):
    pass


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) that other such sockets may share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _someone_listens(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        socket.create_connection((target, port), timeout=1.0).close()
    except OSError:
        return False
    return True


def hold_port(settings: Settings) -> socket.socket:
    """The parent's socket on the port: bound, never listening. It fixes the port (port 0
    picks one), and a port taken by a server without SO_REUSEPORT fails here; one with it
    (another `ledger serve`) would silently share the port, so that is refused too. Taken
    before anything else starts, so that a refused server starts nothing."""
    holder = bound_socket(settings.host, settings.port)
    port = holder.getsockname()[1]
    if _someone_listens(settings.host, port):
        holder.close()
        raise PortInUse(f"another server already listens on {settings.host}:{port}")
    return holder


def metrics_directory() -> str:
    """A fresh directory for this start's metrics, named to the HTTP processes (which start
    after this) in PROMETHEUS_MULTIPROC_DIR: prometheus_client keeps each process's values
    there and a scrape sums them (api/metrics.py). Fresh, so that a new start does not count
    the requests of the one before."""
    directory = tempfile.mkdtemp(prefix="ledger-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _process_dead(directory: str) -> Callable[[int], None]:
    def mark(pid: int) -> None:
        from prometheus_client import multiprocess

        # Drops the dead process's live gauges; its counters stay, so totals never go down.
        multiprocess.mark_process_dead(pid, directory)

    return mark


def serve(settings: Settings, holder: socket.socket) -> None:
    """The parent: runs settings.workers HTTP processes on the port `holder` holds (see
    hold_port) until SIGTERM or SIGINT, then stops them and lets go of the port."""
    port = holder.getsockname()[1]
    directory = metrics_directory()
    try:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        processes = [
            SupervisedProcess(
                f"ledger-http-{i + 1}", run, (settings, port), on_exit=_process_dead(directory)
            )
            for i in range(settings.workers)
        ]
        for process in processes:
            process.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            for process in processes:
                process.stop()
    finally:
        holder.close()
        shutil.rmtree(directory, ignore_errors=True)


def run(settings: Settings, port: int, parent_pid: int) -> None:
    """One HTTP process: uvicorn on a socket of its own, until SIGTERM or SIGINT (uvicorn's
    graceful shutdown) or until the parent is gone."""
    import uvicorn

    from api.app import create_app
    from api.logs import configure_logging

    configure_logging()
    # uvicorn's create_server() makes it listen, once the app has started: a process still
    # starting gets no connections.
    sock = bound_socket(settings.host, port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="info", access_log=False, log_config=None)
    )
    stopped = threading.Event()

    def end() -> None:
        server.should_exit = True

    watch_parent(parent_pid, stopped, end, "an HTTP process")
    try:
        server.run(sockets=[sock])
    finally:
        stopped.set()
        sock.close()
