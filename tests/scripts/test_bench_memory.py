"""How the benchmark reads a rebuild's memory: the build's growth per event from samples of
resident memory against its position (reported), the memory a build keeps from batch to batch
(two builds in one process), and the extrapolation to 10^7 events from that."""

from __future__ import annotations

import subprocess
import sys

import pytest

from projections.read_models.models import ReadModels
from projections.read_models.schema import SHADOW
from scripts.bench import rebuild_memory
from scripts.bench.assessment import (
    MIN_EVENTS_FOR_MEMORY,
    MIN_EVENTS_TO_EXTRAPOLATE,
    extrapolate_province,
)
from scripts.bench.config import PROVINCE_EVENTS
from scripts.bench.projection import memory_profile
from scripts.common import memory_mb
from tests.projections.helpers import live_rows
from tests.service.scenario import found_tree, join_members

FINAL = 400_000


def _samples(mb_at) -> list[tuple[float, int | None, float]]:
    """Start-up (no shadow set yet), a build in 40 steps, then the work after it, and the
    switch (the shadow set renamed: no position again)."""
    samples: list[tuple[float, int | None, float]] = [(0.0, None, 60.0), (0.25, 0, 80.0)]
    for step in range(1, 41):
        position = FINAL * step // 40
        samples.append(
            (0.25 * (step + 1), position if position < FINAL else FINAL, mb_at(position))
        )
    samples += [(11.0, FINAL, 150.0), (11.25, None, 170.0)]
    return samples


def test_flat_build_shows_no_growth() -> None:
    # Caches fill in the first half, then memory stays flat: no growth, whatever the start.
    profile = memory_profile(_samples(lambda p: 100.0 if p >= FINAL / 4 else 40 + p / 2_000), FINAL)
    assert profile["build_rss_mb_per_million_events"] == pytest.approx(0.0)
    assert profile["build_rss_mb_max"] == 100.0
    assert profile["after_build_rss_mb_max"] == 170.0


def test_growing_build_is_measured_per_million_events() -> None:
    # 50 MB more per 100,000 events: 500 MB per million.
    profile = memory_profile(_samples(lambda p: 100 + p / 2_000), FINAL)
    assert profile["build_rss_mb_per_million_events"] == pytest.approx(500.0)
    assert profile["build_rss_mb_max"] == pytest.approx(100 + (FINAL - FINAL // 40) / 2_000)


def test_too_few_samples_measure_nothing() -> None:
    profile = memory_profile([(0.0, None, 50.0), (0.3, 10, 60.0), (0.6, 20, 61.0)], 20)
    assert profile["build_rss_mb_per_million_events"] is None


def _rebuild(events: int, peak: float, retained: float | None, fitted: float | None = None) -> dict:
    return {
        "events": events,
        "build_events_per_s": 20_000,
        "peak_rss_mb": peak,
        "build_rss_mb_per_million_events": fitted,
        "retained_mb_per_million_events": retained,
    }


def test_extrapolation_uses_what_a_build_keeps_from_batch_to_batch() -> None:
    details = {
        "rebuild": {
            "small": _rebuild(600_000, 180.0, 3.0),
            # A line through one build's memory rises steeply (a step in the log's content);
            # what two builds in one process kept is what the extrapolation takes.
            "large": _rebuild(2_000_000, 230.0, 2.0, fitted=107.0),
        }
    }
    province = extrapolate_province(details)
    assert province["rebuild_rss_mb"] == pytest.approx(
        230.0 + 2.0 * (PROVINCE_EVENTS - 2_000_000) / 1e6, abs=0.1
    )
    assert province["rebuild_s"] == pytest.approx(PROVINCE_EVENTS / 20_000)
    assert province["build_rss_mb_per_million_events"] == 107.0
    assert province["retained_mb_per_million_events"] == 2.0


def test_shrinking_memory_is_never_extrapolated_downwards() -> None:
    province = extrapolate_province({"rebuild": {"large": _rebuild(2_000_000, 230.0, -4.0)}})
    assert province["rebuild_rss_mb"] == 230.0


def test_a_county_sized_log_gives_a_rate_but_no_memory_estimate() -> None:
    province = extrapolate_province(
        {"rebuild": {"county": _rebuild(455_000, 234.0, None, fitted=600.0)}}
    )
    assert province["rebuild_rss_mb"] is None
    assert "content of its batches" in province["reason"]
    assert province["rebuild_events_per_s"] == 20_000
    assert province["build_rss_mb_per_million_events"] == 600.0


def test_no_growth_measured_gives_no_memory_estimate() -> None:
    province = extrapolate_province(
        {"rebuild": {"large": _rebuild(MIN_EVENTS_FOR_MEMORY, 230.0, None)}}
    )
    assert province["rebuild_rss_mb"] is None
    assert "not measured on the largest store" in province["reason"]
    small = extrapolate_province(
        {"rebuild": {"tiny": _rebuild(MIN_EVENTS_TO_EXTRAPOLATE - 1, 90.0, 1.0)}}
    )
    assert small["rebuild_rss_mb"] is None and "too small" in small["reason"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_two_builds_in_one_process_measure_what_the_build_keeps(ledger) -> None:
    tree = found_tree(ledger)
    join_members(ledger, tree.base_a, range(1, 6))
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        live_before = live_rows(read_models), read_models.position()
        measured = rebuild_memory.measure(read_models)
        # Both passes read the whole log; the live read models are as they were.
        assert [p["events"] for p in measured["passes"]] == [ledger.head_position()] * 2
        assert all(p["rss_mb_at_end"] > 0 for p in measured["passes"])
        assert isinstance(measured["retained_mb_per_million_events"], float)
        assert (live_rows(read_models), read_models.position()) == live_before
        assert len(live_before[0]["roll_spans"]) == 5
        # The shadow set is gone: the next rebuild starts from nothing.
        conn = read_models.store.connect()
        try:
            with read_models.store.transaction(conn) as cur:
                assert not SHADOW.exists(read_models.store, cur)
        finally:
            conn.close()
    finally:
        read_models.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_childs_peak_does_not_count_its_parents_pages() -> None:
    # ru_maxrss of a child started from a big process counts the parent's pages it held
    # until exec; VmHWM is the peak of the program the child runs.
    ballast = bytearray(300 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    # The child says when its interpreter is up, then waits for the test to end it: a
    # fixed pause could come before it had started, or after it had exited, on a loaded
    # machine.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        peak = memory_mb(child.pid, "VmHWM")
        assert peak is not None and 1 < peak < 100
        assert memory_mb("self", "VmRSS") > 300
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert memory_mb(child.pid) is None  # gone
