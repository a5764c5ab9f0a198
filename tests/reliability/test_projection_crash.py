"""Projection crash: `ledger project` is killed with SIGKILL again and again while it works
through a backlog in small batches (and while new events keep arriving); each restart resumes
from the committed position. The final tables equal a rebuild. Both stores."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from projections.read_models.models import ReadModels
from tests.conftest import Backend
from tests.projections.helpers import assert_equal_to_rebuild
from tests.projections.history import HistoryWriter
from tests.reliability.harness import LedgerProcesses
from tests.reliability.report import record

KILLS = 10
STEPS_BEFORE = 1500
STEPS_BETWEEN_KILLS = 150


@pytest.mark.slow
def test_kill_the_projection_worker_repeatedly(backend: Backend, tmp_path: Path) -> None:
    ledger = backend.open()
    writer = HistoryWriter(ledger, random.Random(11))
    for _ in range(STEPS_BEFORE):
        writer.step()
    read_models = ReadModels(ledger)
    processes = LedgerProcesses(backend.url, tmp_path, backend.settings.encryption_key)
    rng = random.Random(3)
    behind_at_kill = 0
    positions = [read_models.position()]
    worker = None
    try:
        for _ in range(KILLS):
            worker = processes.spawn("project", "--batch", "1", log_name="project.log")
            # Kill it once it is applying batches (its position moves), at a random moment.
            started = read_models.position()
            deadline = time.monotonic() + 60
            while read_models.position() == started:
                assert worker.poll() is None, "the worker exited by itself"
                assert time.monotonic() < deadline, "the worker applied nothing in 60 s"
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.05))
            os.kill(worker.pid, signal.SIGKILL)
            assert worker.wait(timeout=30) == -signal.SIGKILL
            position = read_models.position()
            if position < ledger.head_position():
                behind_at_kill += 1  # killed while it still had events to apply
            positions.append(position)
            for _ in range(STEPS_BETWEEN_KILLS):
                writer.step()
        finished = processes.run("project", "--once")
        assert finished.returncode == 0, finished.stderr
        assert read_models.position() == ledger.head_position()
        assert positions == sorted(positions)  # never went backwards
        assert positions[-1] > positions[0]  # the killed workers made progress
        assert behind_at_kill >= KILLS // 2, "the kills did not land while work was pending"
        assert_equal_to_rebuild(read_models)
        check = processes.rebuild_check()
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        if worker is not None and worker.poll() is None:  # a failure left it running
            worker.kill()
            worker.wait(timeout=30)
        read_models.close()
    record(
        "projection_crash",
        {
            "backend": backend.kind,
            "kills_survived": KILLS,
            "killed_with_work_pending": behind_at_kill,
            "events": ledger.head_position(),
            "mismatches": 0,
        },
    )
