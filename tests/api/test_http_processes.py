"""`ledger serve --workers 2` (scripts/server/http_processes.py), as real processes: one scrape
counts the requests of both HTTP processes, a killed one comes back, a second server on the
same port is refused, and nothing is left holding the port when the server is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from tests.api.test_operations import samples
from tests.processes import (
    alive,
    eventually,
    listens_on,
    spawned_children,
    tcp_inodes,
)
from tests.reliability.harness import LedgerProcesses, ServerProcess

CONNECTIONS = 40


@pytest.fixture
def processes(tmp_path: Path) -> LedgerProcesses:
    return LedgerProcesses(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path)


def http_children(server: ServerProcess) -> list[int]:
    """The HTTP processes: spawned children holding the listening socket (not the
    projection process, which has no socket). They share the server's one socket, which
    the first of them to start makes listen."""
    assert server.process is not None
    return [pid for pid in spawned_children(server.process.pid) if listens_on(pid, server.port)]


def test_a_killed_http_process_comes_back(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        killed = http_children(server)[0]
        os.kill(killed, signal.SIGKILL)
        eventually(
            lambda: killed not in http_children(server) and len(http_children(server)) == 2,
            "a new HTTP process",
        )
        assert httpx.get(server.url + "/healthz", timeout=60).status_code == 200
        # uvicorn's manager said so when it started the new one.
        assert f"Child process [{killed}] died" in server.log_tail()


def test_a_second_server_on_the_same_port_is_refused(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        second = processes.run(
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--workers",
            "2",
            timeout_s=120,
        )
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{server.port}: Address already in use" in (
            second.stderr
        )
        assert httpx.get(server.url + "/healthz", timeout=60).status_code == 200


def test_nothing_holds_the_port_after_the_server_is_killed(processes: LedgerProcesses) -> None:
    # The test holds the port throughout (ServerProcess reserves it), but never listens on
    # it: whoever listens after the kill is one of the server's own processes.
    with ServerProcess(processes, workers=2) as server:
        server.start()
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        spawned = http_children(server)
        server.kill()  # SIGKILL: no shutdown code runs in the server
        eventually(
            lambda: not any(alive(pid) for pid in spawned), "the orphaned HTTP processes stopped"
        )
        assert not tcp_inodes(server.port, "0A")  # nobody listens
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0
        server.start()  # the same port, at once
        assert httpx.get(server.url + "/healthz", timeout=60).status_code == 200


def readyz_total(url: str) -> float:
    """The request counter's total for /readyz (which nothing but this test asks) in one
    scrape, over a connection of its own, so that either process may answer it."""
    text = httpx.get(url + "/metrics", timeout=60).text
    found = samples(text, "ledger_http_requests_total")
    return sum(n for labels, n in found.items() if ("route", "/readyz") in labels)


def readyz_by(url: str, count: int) -> list[int]:
    """`count` GET /readyz, each over a connection of its own; their statuses."""
    return [httpx.get(url + "/readyz", timeout=60).status_code for _ in range(count)]


def test_one_scrape_counts_the_requests_of_every_process(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        first, second = http_children(server)
        # Each process answers half of the requests for sure: the other one is stopped
        # (SIGSTOP) meanwhile, so it cannot take a connection from the shared socket. Briefly:
        # uvicorn's manager replaces a process that does not answer its check within 5 s.
        answered = []
        for stopped in (second, first):
            os.kill(stopped, signal.SIGSTOP)
            try:
                answered += readyz_by(server.url, CONNECTIONS // 2)
            finally:
                # Gone if the manager replaced it meanwhile: its counts stay all the same.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(stopped, signal.SIGCONT)
        assert answered == [200] * CONNECTIONS
        # A request is counted just after its answer is sent: wait for the last ones. Then
        # whichever process answers a scrape, it reads the counts of both.
        eventually(lambda: readyz_total(server.url) == CONNECTIONS, "every request counted")
        assert [readyz_total(server.url) for _ in range(6)] == [CONNECTIONS] * 6
        # A process that dies leaves its counts behind: the total does not go down.
        killed = http_children(server)[0]
        os.kill(killed, signal.SIGKILL)
        eventually(
            lambda: killed not in http_children(server) and len(http_children(server)) == 2,
            "a new HTTP process",
        )
        assert readyz_total(server.url) == CONNECTIONS
        # A new start counts from nothing (a fresh directory).
        server.stop()
        server.start()
        assert readyz_total(server.url) == 0
