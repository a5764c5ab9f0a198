"""`ledger serve --workers 2` (api/http_processes.py), as real processes: connections are
spread over both HTTP processes, a killed one comes back, a second server on the same port is
refused, and nothing is left holding the port when the server is killed."""

from __future__ import annotations

import os
import signal
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

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
    return [pid for pid in spawned_children(server.process.pid)
            if listens_on(pid, server.port)]


def test_connections_are_spread_over_the_processes(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        clients = [httpx.Client(base_url=server.url, timeout=60) for _ in range(CONNECTIONS)]
        try:
            eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
            # All at once, as a pool of clients opens its connections; each stays open.
            with ThreadPoolExecutor(CONNECTIONS) as pool:
                statuses = list(pool.map(lambda c: c.get("/healthz").status_code, clients))
            assert statuses == [200] * CONNECTIONS
            established = tcp_inodes(server.port, "01")
            per_process = Counter({pid: len(socket_inodes(pid) & established)
                                   for pid in http_children(server)})
            assert sum(per_process.values()) == CONNECTIONS, per_process
            # The kernel hashes connections over the two sockets, like fair coin tosses:
            # 40 fall 36-4 or worse with a probability of 2e-8. One shared socket gave
            # whole bursts to one process (39 to 1).
            assert min(per_process.values()) >= 4, per_process
        finally:
            for client in clients:
                client.close()


def test_a_killed_http_process_comes_back(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        killed = http_children(server)[0]
        os.kill(killed, signal.SIGKILL)
        eventually(lambda: killed not in http_children(server)
                   and len(http_children(server)) == 2, "a new HTTP process")
        assert httpx.get(server.url + "/healthz", timeout=60).status_code == 200
        # The supervisor said so before it started the new one.
        assert "ledger-http-" in server.log_tail() and "starting it again" in server.log_tail()


def test_a_second_server_on_the_same_port_is_refused(processes: LedgerProcesses) -> None:
    with ServerProcess(processes, workers=2) as server:
        server.start()
        second = processes.run("serve", "--host", "127.0.0.1", "--port", str(server.port),
                               "--workers", "2", timeout_s=120)
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
        eventually(lambda: not any(alive(pid) for pid in spawned),
                   "the orphaned HTTP processes stopped")
        assert not tcp_inodes(server.port, "0A")  # nobody listens
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0
        server.start()  # the same port, at once
        assert httpx.get(server.url + "/healthz", timeout=60).status_code == 200
