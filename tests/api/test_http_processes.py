"""`ledger serve --workers 2` (scripts/server/http_processes.py), as real processes: connections are
spread over both HTTP processes, a killed one comes back, a second server on the same port is
refused, and nothing is left holding the port when the server is killed."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.test_operations import samples
from tests.processes import (
    alive,
    eventually,
    listens_on,
    socket_inodes,
    spawned_children,
    tcp_inodes,
)
from tests.reliability.harness import LedgerProcesses, ServerProcess

CONNECTIONS = 40


@pytest.fixture
def processes(tmp_path: Path) -> LedgerProcesses:
    return LedgerProcesses(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path)


def http_children(server: ServerProcess) -> list[int]:
    """The HTTP processes: spawned children listening on the port (not the projection
    process). Listening, not merely holding a socket: an HTTP process binds its socket
    before the app starts, and gets connections only once it listens."""
    assert server.process is not None
    return [pid for pid in spawned_children(server.process.pid) if listens_on(pid, server.port)]


def open_all_at_once(port: int, count: int) -> list[socket.socket]:
    """`count` connections opened together, as a pool of clients opens its connections."""
    barrier = threading.Barrier(count)

    def open_one(_: int) -> socket.socket:
        barrier.wait(timeout=60)
        return socket.create_connection(("127.0.0.1", port), timeout=60)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(open_one, range(count)))


def status_over(connection: socket.socket, path: str = "/healthz") -> int:
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_connections_are_spread_over_the_processes(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        # Each on a listening socket of its own, which is what lets the kernel spread the
        # connections (processes sharing one socket share one inode here).
        listening = [
            socket_inodes(pid) & tcp_inodes(server.port, "0A") for pid in http_children(server)
        ]
        assert [len(inodes) for inodes in listening] == [1, 1], listening
        assert listening[0] != listening[1], listening
        connections = open_all_at_once(server.port, CONNECTIONS)
        try:
            # The kernel gives each connection to one process's socket as it is opened; it
            # shows in that process once accepted. Counted before any request: uvicorn
            # closes a connection 5 s after its last answer, and on a loaded machine the
            # count could come later than that.
            per_process: Counter[int] = Counter()

            def all_accepted() -> bool:
                established = tcp_inodes(server.port, "01")
                per_process.clear()
                per_process.update(
                    {pid: len(socket_inodes(pid) & established) for pid in http_children(server)}
                )
                return sum(per_process.values()) == CONNECTIONS

            eventually(all_accepted, "every connection accepted by an HTTP process")
            # The kernel hashes connections over the two sockets, like fair coin tosses:
            # 40 fall 36-4 or worse with a probability of 2e-8. One shared socket gave
            # whole bursts to one process (39 to 1).
            assert min(per_process.values()) >= 4, per_process
            assert [status_over(c) for c in connections] == [200] * CONNECTIONS
        finally:
            for connection in connections:
                connection.close()


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
        # The supervisor said so before it started the new one.
        assert "ledger-http-" in server.log_tail() and "starting it again" in server.log_tail()


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
        assert f"another server already listens on 127.0.0.1:{server.port}" in second.stderr
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


def test_one_scrape_counts_the_requests_of_every_process(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        connections = open_all_at_once(server.port, CONNECTIONS)
        try:
            answered_by: Counter[int] = Counter()

            def all_accepted() -> bool:
                established = tcp_inodes(server.port, "01")
                answered_by.clear()
                answered_by.update(
                    {pid: len(socket_inodes(pid) & established) for pid in http_children(server)}
                )
                return sum(answered_by.values()) == CONNECTIONS

            eventually(all_accepted, "every connection accepted by an HTTP process")
            # Both processes answer some of the requests (see the test above for the odds).
            assert min(answered_by.values()) >= 1, answered_by
            assert [status_over(c, "/readyz") for c in connections] == [200] * CONNECTIONS
        finally:
            for connection in connections:
                connection.close()
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
