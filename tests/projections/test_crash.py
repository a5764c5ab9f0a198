"""A real process kill (kill -9) in the middle of a batch, then a restart: nothing applied
twice, nothing skipped; the tables equal a rebuild. Both stores.

Where the kill lands is made certain, never left to timing: the hanging worker stops inside
its third batch and says so; `ledger project` is frozen (SIGSTOP) once it has caught up,
and events arrive while it cannot see them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from projections.read_models.models import ReadModels
from tests.projections.helpers import assert_equal_to_rebuild
from tests.projections.history import HistoryWriter

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120


def _history(ledger, steps: int, seed: int) -> None:
    HistoryWriter(ledger, random.Random(seed)).steps(steps)


def _wait_for(condition, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(
                f"the worker exited ({proc.returncode}) before {what}: "
                f"{log.read_text(errors='replace')[-3000:]}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _spawn(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    # A file, not a pipe nobody reads while the worker runs (a full pipe would block it).
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=out, **kwargs)


def _max_position(rm: ReadModels) -> int:
    with rm.store.reader() as cur:
        cur.execute(
            "SELECT MAX(m) FROM (SELECT MAX(position) AS m FROM rm_ledger_lines UNION "
            "SELECT MAX(position) FROM rm_roll_changes UNION "
            "SELECT MAX(opened_position) FROM rm_roll_spans) t"
        )
        return int(cur.fetchone()[0] or 0)


def test_kill_mid_batch_then_restart(backend, tmp_path):
    ledger = backend.open()
    _history(ledger, 250, seed=7)
    rm = ReadModels(ledger)
    marker, log = tmp_path / "hanging", tmp_path / "hanging.log"
    proc = _spawn(
        [
            sys.executable,
            "-m",
            "tests.projections.hanging_worker",
            backend.url,
            backend.settings.encryption_key,
            str(marker),
            "2",
            "40",
        ],
        log,
        cwd=ROOT,
    )
    try:
        _wait_for(marker.exists, "the third batch was written", proc, log)
        hanging_at = int(marker.read_text())
        committed = rm.position()
        assert 0 < committed < hanging_at <= ledger.head_position()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    # Nothing of the killed batch survived: the rows stop at the committed position.
    assert rm.position() == committed
    assert _max_position(rm) <= committed
    rm.catch_up()
    assert rm.position() == ledger.head_position()
    assert_equal_to_rebuild(rm)
    rm.close()


def test_kill_ledger_project_then_restart(backend, tmp_path):
    ledger = backend.open()
    writer = HistoryWriter(ledger, random.Random(11))
    writer.steps(150)
    rm = ReadModels(ledger)
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": backend.url,
        "LEDGER_ENCRYPTION_KEY": backend.settings.encryption_key,
        "LEDGER_KEY_FILE": str(tmp_path / "unused.key"),
        "LEDGER_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
    }
    ledger_script = Path(sys.executable).parent / "ledger"
    log = tmp_path / "project.log"
    proc = _spawn([str(ledger_script), "project", "--batch", "5"], log, cwd=tmp_path, env=env)
    try:
        caught_up = ledger.head_position()
        _wait_for(lambda: rm.position() == caught_up, "the worker caught up", proc, log)
        # Frozen, it cannot apply what comes next: it is killed with work pending, always
        # (killed as it ran, it could finish the backlog between a look and the kill).
        os.kill(proc.pid, signal.SIGSTOP)
        writer.steps(150)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    killed_at = rm.position()
    assert 0 < killed_at == caught_up < ledger.head_position()
    assert _max_position(rm) <= killed_at
    restarted = subprocess.run(
        [str(ledger_script), "project", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=WAIT_S,
    )
    assert restarted.returncode == 0, restarted.stderr.decode()
    assert rm.position() == ledger.head_position()
    assert_equal_to_rebuild(rm)
    rm.close()
