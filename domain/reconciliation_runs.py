"""对账记录: a month-end reconciliation run of one union, as it was found, and its sign-off.

A run's figures are stored whole in the event that records it and never change: a new run is a
new record. An auditor or admin signs a run off with a note; a signed-off run is closed, and a
second sign-off is refused. Each union has a register of its runs (the list the API shows).
"""

from __future__ import annotations

import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import InvalidStatus

MAX_NOTE_CHARS = 2_000


@stable_topic("ledger:ReconciliationRun")
class ReconciliationRun(LedgerAggregate):
    """One run: the union, the month, the window of days it matched within, and its report
    (the books check, and per file the rows read, matched and every difference)."""

    @event("Recorded", topic="ledger:ReconciliationRun.Recorded")
    def __init__(
        self,
        id: UUID,
        organization_code: str,
        period: str,
        window_days: int,
        report: dict[str, Any],
    ) -> None:
        self.organization_code = organization_code
        self.period = period
        self.window_days = window_days
        self.report = report
        self.status = "open"
        self.signed_off_by: str | None = None
        self.signed_off_at: datetime.datetime | None = None
        self.note: str | None = None

    def sign_off(self, *, note: str, by: str, at: datetime.datetime) -> None:
        if self.status != "open":
            raise InvalidStatus(
                f"reconciliation run {self.id} was signed off by {self.signed_off_by} "
                f"at {self.signed_off_at}; a signed-off run cannot change"
            )
        self._signed_off(note=note, by=by, at=at)

    @event("SignedOff", topic="ledger:ReconciliationRun.SignedOff")
    def _signed_off(self, note: str, by: str, at: datetime.datetime) -> None:
        self.status = "signed_off"
        self.note = note
        self.signed_off_by = by
        self.signed_off_at = at


@stable_topic("ledger:ReconciliationRegister")
class ReconciliationRegister(LedgerAggregate):
    """对账登记: the runs of one union in the order they were recorded."""

    @staticmethod
    def id_for(organization_code: str) -> UUID:
        return stable_id("reconciliations", organization_code)

    @staticmethod
    def create_id(organization_code: str, **_: object) -> UUID:
        return ReconciliationRegister.id_for(organization_code)

    @event("Opened", topic="ledger:ReconciliationRegister.Opened")
    def __init__(self, organization_code: str) -> None:
        self.organization_code = organization_code
        self.runs: list[dict[str, str]] = []

    def add(self, run_id: str, period: str) -> None:
        self._added(run_id=run_id, period=period)

    @event("Added", topic="ledger:ReconciliationRegister.Added")
    def _added(self, run_id: str, period: str) -> None:
        self.runs.append({"run_id": run_id, "period": period})
