"""Long projector runs pause automatic garbage collection (gc_pause): it is restored after,
left alone when already off, and reference cycles are still freed every few batches. An HTTP
process freezes what its start made and collects its young generation less often."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

from storage import gc_pause


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_automatic_collection_is_off_during_the_run_and_restored_after():
    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_failing_run_restores_it_too():
    try:
        with gc_pause.paused():
            raise RuntimeError("batch failed")
    except RuntimeError:
        pass
    assert gc.isenabled()


def test_inactive_or_already_off_changes_nothing():
    with gc_pause.paused(False):
        assert gc.isenabled()
    gc.disable()
    try:
        with gc_pause.paused():
            pass
        assert not gc.isenabled()  # not turned on by a run that did not turn it off
    finally:
        gc.enable()


def test_a_cycle_made_by_a_batch_is_freed_within_collect_every_batches():
    with gc_pause.paused() as between_batches:
        gc.collect()  # a fresh start for the count below
        alive = weakref.ref(_Node())
        for _ in range(gc_pause.COLLECT_EVERY - 1):
            between_batches()
        assert alive() is not None  # no automatic collection freed it
        between_batches()
        assert alive() is None


def test_nested_and_overlapping_runs_turn_it_back_on_when_the_last_one_ends():
    outer = gc_pause.paused()
    outer.__enter__()
    try:
        with gc_pause.paused() as inner_between_batches:
            assert not gc.isenabled()
            alive = weakref.ref(_Node())
            for _ in range(gc_pause.COLLECT_EVERY):
                inner_between_batches()
            assert alive() is None  # the inner run still collects between its batches
        assert not gc.isenabled()  # the outer run is still under way
    finally:
        outer.__exit__(None, None, None)
    assert gc.isenabled()


# In a process of its own: freezing and the thresholds are process-wide, and this one runs
# the other tests.
SERVING_PROCESS = """
import gc, os, sys, weakref
from pathlib import Path
from scripts.server.http_processes import http_process_app
from storage import gc_pause
from storage.settings import Settings

assert gc.get_freeze_count() == 0
directory = Path(sys.argv[1])
settings = Settings(
    database_url=f"sqlite:///{directory / 'ledger.db'}", key_file=directory / "ledger.key"
)
app = http_process_app(settings, os.getppid())
assert gc.get_threshold() == gc_pause.SERVING_THRESHOLDS, gc.get_threshold()
# What was alive once the application was built is out of the collector's way: its routes.
assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()


class Node:
    def __init__(self):
        self.me = self


node = Node()
freed = weakref.ref(node)
del node
# A cycle made afterwards is still freed by automatic collection, once enough is allocated.
keep = [[] for _ in range(3 * gc_pause.SERVING_THRESHOLDS[0])]
assert freed() is None
print("ok")
"""


def test_an_http_process_freezes_what_its_start_made_and_still_frees_later_cycles(tmp_path):
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", SERVING_PROCESS, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
