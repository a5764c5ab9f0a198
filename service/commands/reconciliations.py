"""对账记录: a month-end reconciliation run stored as it was found, and its sign-off."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue, NotFound
from domain.period import Month
from domain.reconciliation import MAX_WINDOW_DAYS
from domain.reconciliation_runs import (
    MAX_NOTE_CHARS,
    ReconciliationRegister,
    ReconciliationRun,
)
from service.commands.base import Command
from service.unit_of_work import UnitOfWork
from storage.keys import MemberIds


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordReconciliation(Command):
    """Stores a run (its report made by projections/reconciliation) in the union's register."""

    NAME = "record_reconciliation"
    run_id: UUID
    organization_code: str
    period: str
    window_days: int
    report: dict[str, Any]

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        return (self.run_id, ReconciliationRegister.id_for(self.organization_code))

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.organization_code, field="organization_code")
        period = str(Month.parse(self.period))
        if not 0 <= self.window_days <= MAX_WINDOW_DAYS:
            raise InvalidValue("window_days", f"a window is 0 to {MAX_WINDOW_DAYS} days")
        run = ReconciliationRun(
            id=self.run_id,
            organization_code=org.code,
            period=period,
            window_days=self.window_days,
            report=self.report,
        )
        uow.add(run)
        register = uow.get(ReconciliationRegister.id_for(org.code))
        if register is None:
            register = ReconciliationRegister(organization_code=org.code)
            uow.add(register)
        register.add(str(run.id), period)
        return {"run_id": str(run.id)}


@dataclass(frozen=True, kw_only=True, eq=False)
class SignOffReconciliation(Command):
    """签核: closes a run with a note; a signed-off run cannot change (InvalidStatus, 409)."""

    NAME = "sign_off_reconciliation"
    run_id: UUID
    note: str
    by: str
    at: datetime.datetime

    def request(self) -> dict[str, Any]:
        # The moment is the server's, not the client's: a retry is the same request.
        return {"run_id": str(self.run_id), "note": self.note}

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        run = uow.get(self.run_id)
        if not isinstance(run, ReconciliationRun):
            raise NotFound(f"reconciliation run {self.run_id} not found")
        note = self.note.strip() if isinstance(self.note, str) else ""
        if not note:
            raise InvalidValue("note", "a sign-off needs a note")
        if len(note) > MAX_NOTE_CHARS:
            raise InvalidValue("note", f"a note has at most {MAX_NOTE_CHARS} characters")
        run.sign_off(note=note, by=self.by, at=self.at)
        return {"run_id": str(run.id)}
