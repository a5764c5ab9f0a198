"""`ledger serve --workers 2` (scripts/server/http_processes.py), as real processes: connections are
spread over both HTTP processes, a killed one comes back, a second server on the same port is
refused, and nothing is left holding the port when the server is killed."""

from __future__ import annotations

import os
import re
import signal
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.test_projection_process import alive, children, eventually
from tests.reliability.harness import LedgerProcesses, ServerProcess

CONNECTIONS = 40


@pytest.fixture
def processes(tmp_path: Path) -> LedgerProcesses:
    return LedgerProcesses(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path)


def http_children(server: ServerProcess) -> list[int]:
    """The HTTP processes: spawned children serving the app (not the projection process)."""
    assert server.process is not None
    found = []
    for pid in children(server.process.pid):
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes() and _sockets(pid):
            found.append(pid)
    return found


def _sockets(pid: int) -> set[str]:
    """Inodes of the process's sockets."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if match:
            inodes.add(match.group(1))
    return inodes


def _established_on(port: int) -> set[str]:
    """Inodes of the server side of established TCP connections to the port (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        if local_port == port and state == "01":
            inodes.add(inode)
    return inodes


def test_connections_are_spread_over_the_processes(processes: LedgerProcesses) -> None:
    server = ServerProcess(processes, workers=2)
    server.start()
    clients = [httpx.Client(base_url=server.url, timeout=10) for _ in range(CONNECTIONS)]
    try:
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        # All at once, as a pool of clients opens its connections; each stays open.
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            statuses = list(pool.map(lambda c: c.get("/healthz").status_code, clients))
        assert statuses == [200] * CONNECTIONS
        established = _established_on(server.port)
        per_process = Counter({pid: len(_sockets(pid) & established)
                               for pid in http_children(server)})
        assert sum(per_process.values()) == CONNECTIONS, per_process
        # The kernel hashes connections over the two sockets: 40 fall at most 32-8 with a
        # probability of about 1e-4. One shared socket gave whole bursts to one process.
        assert min(per_process.values()) >= 8, per_process
    finally:
        for client in clients:
            client.close()
        server.stop()


def test_a_killed_http_process_comes_back(processes: LedgerProcesses) -> None:
    server = ServerProcess(processes, workers=2)
    server.start()
    try:
        eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
        killed = http_children(server)[0]
        os.kill(killed, signal.SIGKILL)
        eventually(lambda: killed not in http_children(server)
                   and len(http_children(server)) == 2, "a new HTTP process")
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        assert "ledger-http-" in server.log_tail() and "starting it again" in server.log_tail()
    finally:
        server.stop()


def test_a_second_server_on_the_same_port_is_refused(processes: LedgerProcesses) -> None:
    server = ServerProcess(processes, workers=2)
    server.start()
    try:
        second = processes.run("serve", "--host", "127.0.0.1", "--port", str(server.port),
                               "--workers", "2", timeout_s=60)
        assert second.returncode == 1
        assert f"another server already listens on 127.0.0.1:{server.port}" in second.stderr
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    finally:
        server.stop()


def test_nothing_holds_the_port_after_the_server_is_killed(processes: LedgerProcesses) -> None:
    server = ServerProcess(processes, workers=2)
    server.start()
    eventually(lambda: len(http_children(server)) == 2, "two HTTP processes listening")
    spawned = http_children(server)
    server.kill()  # SIGKILL: no shutdown code runs in the server
    eventually(lambda: not any(alive(pid) for pid in spawned),
               "the orphaned HTTP processes stopped")
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0  # nobody listens
    server.start()  # the same port, at once
    try:
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    finally:
        server.stop()
