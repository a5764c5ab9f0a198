"""The server's projection process (scripts/server/projection_process.py), as real processes:
it keeps the read models current, comes back when killed, stops with the server, and stops by
itself when the server is killed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from api.services import Services
from projections.audit.trail import AuditTrail
from projections.read_models.models import ReadModels
from scripts.server.projection_process import ProjectionProcess
from service.commands import JoinMember
from tests.conftest import Backend
from tests.processes import alive, eventually, spawned_children
from tests.reliability.harness import LedgerProcesses, ServerProcess
from tests.service.scenario import found_tree, person


def test_it_keeps_the_read_models_current_and_comes_back_when_killed(backend: Backend) -> None:
    ledger = backend.open()
    tree = found_tree(ledger)
    read_models = ReadModels(ledger)
    projection = ProjectionProcess(backend.settings)
    projection.start()
    try:
        eventually(
            lambda: read_models.position() == ledger.head_position(), "the founded tree projected"
        )
        first = projection.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        # The count first: while the supervisor restarts the child, pid is None (the new
        # one not started yet), then the new pid before the count moves.
        eventually(
            lambda: projection.starts == 2 and alive(projection.pid or 0),
            "a new projection process",
        )
        assert projection.pid != first
        joined = ledger.execute(
            JoinMember(
                id_number=person(1),
                name="会员1",
                organization_code=tree.base_a,
                joined_on="2024-01-02",
            )
        )
        eventually(
            lambda: read_models.position() >= (joined.position or 0),
            "the join projected by the new process",
        )
        assert projection.starts == 2
    finally:
        projection.stop()
        read_models.close()
    assert not alive(projection.pid or 0)


def test_a_server_with_a_projection_process_runs_no_projection_thread(backend: Backend) -> None:
    for in_thread in (True, False):
        settings = backend.settings.model_copy(update={"projection_thread": in_thread})
        services = Services.open(settings)
        try:
            services.start()
            assert (services._projection is not None) is in_thread
            # The loop carries the server's one sealer wherever it runs.
            assert services._projection is None or services._projection.sealer is not None
        finally:
            services.close()


def test_the_projection_process_seals_by_itself(backend: Backend) -> None:
    ledger = backend.open()
    found_tree(ledger)
    trail = AuditTrail(ledger)
    assert trail.seals() == []
    projection = ProjectionProcess(backend.settings)
    projection.start()
    try:
        eventually(lambda: bool(trail.seals()), "a seal made by the projection process")
    finally:
        projection.stop()
    assert trail.seals()[0]["position"] == ledger.head_position()


@pytest.fixture
def processes(tmp_path: Path) -> LedgerProcesses:
    return LedgerProcesses(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path)


def projection_child(server: ServerProcess) -> int:
    """`ledger serve`'s one spawned child besides multiprocessing's resource tracker."""
    assert server.process is not None
    pid = server.process.pid
    eventually(lambda: bool(spawned_children(pid)), "the projection process started")
    spawned = spawned_children(pid)
    assert len(spawned) == 1, spawned
    return spawned[0]


def test_it_stops_with_the_server(processes: LedgerProcesses) -> None:
    with ServerProcess(processes) as server:
        server.start()
        child = projection_child(server)
        assert httpx.get(server.url + "/readyz", timeout=60).status_code == 200
        server.stop()
        eventually(lambda: not alive(child), "the projection process stopped")
        assert "the server process is gone" not in server.log_tail()  # stopped, not orphaned


def test_it_stops_by_itself_when_the_server_is_killed(processes: LedgerProcesses) -> None:
    with ServerProcess(processes) as server:
        server.start()
        child = projection_child(server)
        server.kill()  # SIGKILL: no shutdown code runs in the server
        eventually(lambda: not alive(child), "the orphaned projection process stopped")
        # Its last words, written before it exited: complete once it is gone.
        assert "the server process is gone" in server.log_tail()
