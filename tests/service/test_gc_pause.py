"""Long projector runs pause automatic garbage collection (gc_pause): it is restored after,
left alone when already off, and reference cycles are still freed every few batches."""

from __future__ import annotations

import gc
import weakref

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
