"""The server's projection process: one catch-up loop beside the HTTP processes.

A server process's threads share one core (the GIL). With the catch-up loop in a thread of
each HTTP process, the process serving a roster import gave about a fifth of its time to
applying events, and the import ran 20-35 % slower than with the loop in a process of its own
(measured with `ledger serve --workers 2` on PostgreSQL; see the README's benchmark notes).
So `ledger serve` runs the loop of `ledger project` (projections/worker.py) in a child process
and turns the thread off in its HTTP processes (settings.projection_thread).

The child is restarted if it dies, stopped with the server, and stops by itself if the server
dies without stopping it (SIGKILL): it checks every half second that its parent is still the
process that started it. Reads do not depend on it: a query catches the read models up first
(read-your-writes), so while the child is away reads stay correct, only slower.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.process import BaseProcess

from service.settings import Settings

log = logging.getLogger("ledger.projection")

PARENT_CHECK_S = 0.5
RESTART_DELAY_S = (0.5, 10.0)  # first and longest wait before starting a dead child again
STOP_TIMEOUT_S = 15.0


class ProjectionProcess:
    """Starts the child, keeps one running while the server runs, and stops it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")  # no inherited threads or pools
        self._stopping = threading.Event()
        self._child: BaseProcess | None = None
        self._supervisor: threading.Thread | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise,
                                            name="ledger-projection-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the child has not stopped within STOP_TIMEOUT_S."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        child = self._child
        if child is not None and child.is_alive():
            child.terminate()
            child.join(STOP_TIMEOUT_S)
            if child.is_alive():
                child.kill()
                child.join()

    def _spawn(self) -> None:
        self._child = self._context.Process(target=run, args=(self.settings, os.getpid()),
                                            name="ledger-projection", daemon=False)
        self._child.start()
        self.starts += 1

    def _supervise(self) -> None:
        delay = RESTART_DELAY_S[0]
        while not self._stopping.is_set():
            child = self._child
            assert child is not None
            child.join(PARENT_CHECK_S)
            if child.is_alive() or self._stopping.is_set():
                continue
            log.warning("the projection process exited with %s; starting it again in %.1fs",
                        child.exitcode, delay)
            if self._stopping.wait(delay):
                return
            self._spawn()
            delay = min(delay * 2, RESTART_DELAY_S[1])


def run(settings: Settings, parent_pid: int) -> None:
    """The child: the catch-up loop until SIGTERM or SIGINT, or until the parent is gone."""
    from projections.read_models import ReadModels
    from projections.worker import ProjectionWorker
    from service.application import Ledger

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: stop as on SIGTERM, quietly.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    ledger = Ledger(settings)
    read_models = ReadModels(ledger)
    worker = ProjectionWorker(read_models)

    def watch() -> None:
        while not stop.wait(PARENT_CHECK_S):
            if os.getppid() != parent_pid:
                log.warning("the server process is gone; the projection process stops")
                break
        worker.stop()  # wakes the loop (a spare NOTIFY on PostgreSQL) and lets it end

    watcher = threading.Thread(target=watch, name="ledger-projection-watch", daemon=True)
    watcher.start()
    try:
        worker.run()
    finally:
        stop.set()
        read_models.close()
        ledger.close()
