"""The projection process of `ledger serve`: started with spawn, restarted if it dies, stopped
with the server, and gone by itself if the server dies without stopping it (SIGKILL): it
checks every half second that its parent is still the process that started it (watch_parent,
which the HTTP processes run too)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("ledger.supervisor")

PARENT_CHECK_S = 0.5
RESTART_DELAY_S = (0.5, 10.0)  # first and longest wait before starting a dead child again
STOP_TIMEOUT_S = 15.0


class SupervisedProcess:
    """Starts the child, keeps one running while the server runs, and stops it. The child
    runs target(*args, parent_pid) and must end when watch_parent() says the parent is gone."""

    def __init__(self, name: str, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.name = name
        self.target = target
        self.args = args
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
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"{self.name}-supervisor", daemon=True
        )
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
        self._child = self._context.Process(
            target=self.target, args=(*self.args, os.getpid()), name=self.name, daemon=False
        )
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
            log.warning(
                "%s exited with %s; starting it again in %.1fs", self.name, child.exitcode, delay
            )
            if self._stopping.wait(delay):
                return
            self._spawn()
            delay = min(delay * 2, RESTART_DELAY_S[1])


def watch_parent(
    parent_pid: int, stopped: threading.Event, on_end: Callable[[], None], what: str
) -> threading.Thread:
    """In a child: a thread that calls on_end() once `stopped` is set or the parent is gone
    (the child has been re-parented), whichever comes first."""

    def watch() -> None:
        while not stopped.wait(PARENT_CHECK_S):
            if os.getppid() != parent_pid:
                log.warning("the server process is gone; %s stops", what)
                break
        on_end()

    thread = threading.Thread(target=watch, name="ledger-watch-parent", daemon=True)
    thread.start()
    return thread
