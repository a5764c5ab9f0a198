"""The server seals by itself: at least hourly while events arrive, never when nothing came,
one seal per interval however many sealers share a store. The clock is injected: no test
waits an hour, or at all, except the loop's wiring, which waits (bounded) for its first seal."""

from __future__ import annotations

import datetime
import logging
import threading
import time

import pytest

from projections.audit.sealer import AutoSealer
from projections.audit.trail import AuditTrail
from projections.read_models.models import ReadModels
from projections.read_models.worker import ProjectionWorker
from service.application import Ledger
from service.commands import RecordDues
from tests.projections.test_audit import BASE_B, Raw, build_deployment

T0 = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
HOUR = 3600


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


@pytest.fixture
def trail(ledger: Ledger) -> AuditTrail:
    build_deployment(ledger)
    return AuditTrail(ledger)


def dues(ledger: Ledger, month: str) -> None:
    ledger.execute(
        RecordDues(
            organization_code=BASE_B, period=month, amount="12.50", received_on=f"{month}-21"
        )
    )


def test_it_seals_hourly_while_events_arrive_and_not_otherwise(trail: AuditTrail, ledger: Ledger):
    clock = Clock()
    sealer = AutoSealer(trail, interval_s=HOUR, clock=clock)
    first = sealer.tick()  # events and no seal yet: at once
    assert first is not None and first["position"] == ledger.head_position()
    assert first["sealed_at"] == T0.isoformat()
    dues(ledger, "2024-02")
    for minutes in (0.5, 10, 48):  # within the hour: not due (or not even asked)
        clock.advance(minutes=minutes)
        assert sealer.tick() is None
    clock.advance(minutes=1.5)  # 60 minutes after the first seal
    second = sealer.tick()
    assert second is not None and second["position"] == ledger.head_position()
    assert second["sealed_at"] == (T0 + datetime.timedelta(hours=1)).isoformat()
    clock.advance(hours=5)  # no events since: nothing to seal, however long
    assert sealer.tick() is None
    dues(ledger, "2024-03")  # an event after a long quiet spell: sealed at the next check
    clock.advance(minutes=1)
    assert sealer.tick()["position"] == ledger.head_position()
    assert [s["position"] for s in trail.seals()] == [
        first["position"],
        second["position"],
        ledger.head_position(),
    ]


def test_an_empty_store_is_not_sealed(ledger: Ledger):
    sealer = AutoSealer(AuditTrail(ledger), interval_s=HOUR, clock=Clock())
    assert sealer.tick() is None
    assert AuditTrail(ledger).seals() == []


def test_sealers_sharing_a_store_make_one_seal_per_interval(trail: AuditTrail, ledger: Ledger):
    clock = Clock()
    other = AuditTrail(ledger)  # another server's sealer on the same database
    sealers = [AutoSealer(t, interval_s=HOUR, clock=clock) for t in (trail, other)]
    assert sealers[0].tick() is not None
    assert sealers[1].tick() is None
    dues(ledger, "2024-02")
    clock.advance(hours=1)
    # Both find a seal due before either seals; the decision under the lock lets one through.
    interval = datetime.timedelta(hours=1)
    assert trail.seal_due(clock.now, interval) and other.seal_due(clock.now, interval)
    made = [t.seal(now=clock.now, only_if_older_than=interval) for t in (trail, other)]
    assert made[0] is not None and made[1] is None
    assert len(trail.seals()) == 2


def test_a_failed_seal_is_logged_and_the_loop_goes_on(
    trail: AuditTrail, backend, caplog: pytest.LogCaptureFixture
):
    clock = Clock()
    sealer = AutoSealer(trail, interval_s=HOUR, clock=clock)
    sealer.tick()
    raw = Raw(backend)
    try:  # rows that contradict the seal: sealing over them is refused
        target = raw.positions()[3]
        raw.run("DELETE FROM audit_chain WHERE position >= ?", (target,))
        raw.flip_byte(target, 9)
    finally:
        raw.close()
    dues(trail.ledger, "2024-02")
    clock.advance(hours=2)
    with caplog.at_level(logging.ERROR, logger="projections.audit.sealer"):
        assert sealer.tick() is None
    assert "no longer match the seal" in caplog.text


def test_the_catch_up_loop_runs_the_sealer(trail: AuditTrail, ledger: Ledger):
    read_models = ReadModels(ledger)
    worker = ProjectionWorker(
        read_models,
        poll_interval_s=0.01,
        min_interval_s=0,
        sealer=AutoSealer(trail, interval_s=HOUR),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not trail.seals():
            assert time.monotonic() < deadline, "no seal within 30s"
            time.sleep(0.02)
    finally:
        worker.stop()
        thread.join(10)
        read_models.close()
    assert trail.seals()[0]["position"] == ledger.head_position()
