"""Register commands: 建档 (open a hardship file), 年度复核 (review), 脱困 (close); 劳模登记
(register a model worker or add an honour), 撤销 (revoke). And the check a payout makes
against the registers (register_entry)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue, NotFound
from domain.identity import IdNumber
from domain.members import Member
from domain.money import Money
from domain.period import parse_date
from domain.registers import (
    MAX_FILES_PER_PERSON,
    FileAlreadyOpen,
    HardshipFile,
    ModelWorker,
    NotOnRegister,
)
from service.commands.base import Command
from service.commands.members import member_id_if_valid
from service.unit_of_work import UnitOfWork
from storage.keys import MemberIds

HARDSHIP, MODEL_WORKER = "hardship", "model_worker"


def _iso(day: datetime.date | None) -> str | None:
    return None if day is None else day.isoformat()


def files_of(uow: UnitOfWork, member_id: str) -> list[HardshipFile]:
    """Every hardship file of a person, oldest first (numbered 1, 2, ... without gaps)."""
    files: list[HardshipFile] = []
    for serial in range(1, MAX_FILES_PER_PERSON + 1):
        found = uow.get(HardshipFile.id_for(member_id, serial))
        if not isinstance(found, HardshipFile):
            break
        files.append(found)
    return files


def hardship_file_view(file: HardshipFile, member: Member) -> dict[str, Any]:
    """A file as the API shows it; organization_code is the person's current union (the file
    follows the membership)."""
    return {
        "file_id": str(file.id),
        "member_id": file.member_id,
        "name": member.name,
        "organization_code": member.organization_code,
        "opened_by": file.organization_code,
        "category": file.category,
        "causes": list(file.causes),
        "household_size": file.household_size,
        "monthly_income_per_head": str(Money(file.income_fen)),
        "opened_on": _iso(file.opened_on),
        "last_reviewed_on": _iso(file.last_reviewed_on),
        "reviews": file.reviews,
        "review_due": _iso(file.review_due()) if file.is_open else None,
        "status": file.status,
        "closed_on": _iso(file.closed_on),
        "reason": file.close_reason,
    }


def model_worker_view(worker: ModelWorker) -> dict[str, Any]:
    return {
        "model_worker_id": str(worker.id),
        "member_id": worker.member_id,
        "id_number": worker.id_number,
        "name": worker.name,
        "organization_code": worker.organization_code,
        "level": worker.level,
        "honours": [dict(h) for h in worker.honours],
        "status": "revoked" if worker.is_revoked else "active",
        "revoked_on": _iso(worker.revoked_on),
        "reason": worker.revoke_reason,
    }


def hardship_file_in(uow: UnitOfWork, file_id: Any) -> HardshipFile:
    try:
        uuid = UUID(str(file_id))
    except ValueError:
        uuid = None
    found = uow.get(uuid) if uuid is not None else None
    if not isinstance(found, HardshipFile):
        raise NotFound(f"hardship file {str(file_id)[:40]} not found")
    return found


def model_worker_in(uow: UnitOfWork, worker_id: Any) -> ModelWorker:
    try:
        uuid = UUID(str(worker_id))
    except ValueError:
        uuid = None
    found = uow.get(uuid) if uuid is not None else None
    if not isinstance(found, ModelWorker):
        raise NotFound(f"model worker {str(worker_id)[:40]} not found")
    return found


def read_hardship_file(uow: UnitOfWork, file_id: Any) -> dict[str, Any]:
    file = hardship_file_in(uow, file_id)
    return hardship_file_view(file, uow.member(file.member_id))


def read_model_worker(uow: UnitOfWork, worker_id: Any) -> dict[str, Any]:
    return model_worker_view(model_worker_in(uow, worker_id))


def register_entry(
    uow: UnitOfWork, programme: str, member: Member, day: datetime.date
) -> dict[str, Any]:
    """The register entry a payout to a person is made against, for the voucher's details:
    a hardship file open on the day, or a model worker valid on it, which notes the payout (so
    that no later closure or revocation can date before it). NotOnRegister (409) if the
    programme needs one and there is none; nothing for other programmes."""
    member_id = str(member.id)
    if programme == HARDSHIP:
        for file in reversed(files_of(uow, member_id)):
            if file.open_on(day):
                file.note_payout(day)
                return {"hardship_file_id": str(file.id)}
        raise NotOnRegister(f"a hardship payout needs a hardship file open on {day}")
    if programme == MODEL_WORKER:
        worker = uow.get(ModelWorker.id_for(member_id))
        if isinstance(worker, ModelWorker) and worker.valid_on(day):
            worker.note_payout(day)
            return {"model_worker_id": str(worker.id)}
        if isinstance(worker, ModelWorker) and worker.revoked_on is not None:
            raise NotOnRegister(
                f"the model worker's honours were revoked on {worker.revoked_on}: "
                f"no model-worker payout on {day}"
            )
        raise NotOnRegister(
            f"a model-worker payout needs a model worker honoured by {day} on the register"
        )
    return {}


@dataclass(frozen=True, kw_only=True, eq=False)
class OpenHardshipFile(Command):
    """建档: a union opens a hardship file for one of its members."""

    NAME = "open_hardship_file"
    member_id: str
    category: Any
    causes: Any
    household_size: Any
    monthly_income_per_head: Any
    opened_on: Any
    # The union opening the file (default: the member's own). Any other union is refused.
    organization_code: str | None = None

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id, field="member_id")
        code = self.organization_code or member.organization_code
        org = uow.org(code, field="organization_code")
        day = parse_date(self.opened_on, field="opened_on")
        files = files_of(uow, str(member.id))
        if files and files[-1].is_open:
            raise FileAlreadyOpen(
                f"this person has an open hardship file (opened on {files[-1].opened_on})"
            )
        if files and files[-1].closed_on is not None and day < files[-1].closed_on:
            raise InvalidValue(
                "opened_on", f"the person's last file was closed on {files[-1].closed_on}"
            )
        file = HardshipFile.open(
            member=member,
            organization=org,
            serial=len(files) + 1,
            category=self.category,
            causes=self.causes,
            household_size=self.household_size,
            monthly_income_per_head=self.monthly_income_per_head,
            opened_on=day,
        )
        uow.add(file)
        return hardship_file_view(file, member)


@dataclass(frozen=True, kw_only=True, eq=False)
class ReviewHardshipFile(Command):
    """年度复核: the household's figures again, the category kept or changed."""

    NAME = "review_hardship_file"
    file_id: str
    reviewed_on: Any
    category: Any
    household_size: Any
    monthly_income_per_head: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        file = hardship_file_in(uow, self.file_id)
        file.review(
            reviewed_on=parse_date(self.reviewed_on, field="reviewed_on"),
            category=self.category,
            household_size=self.household_size,
            monthly_income_per_head=self.monthly_income_per_head,
        )
        return hardship_file_view(file, uow.member(file.member_id))


@dataclass(frozen=True, kw_only=True, eq=False)
class CloseHardshipFile(Command):
    """脱困: the file is closed with a reason."""

    NAME = "close_hardship_file"
    file_id: str
    closed_on: Any
    reason: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        file = hardship_file_in(uow, self.file_id)
        file.close(closed_on=parse_date(self.closed_on, field="closed_on"), reason=self.reason)
        return hardship_file_view(file, uow.member(file.member_id))


@dataclass(frozen=True, kw_only=True, eq=False)
class RegisterModelWorker(Command):
    """劳模登记: a person on the register by identity number, or another honour for one."""

    NAME = "register_model_worker"
    id_number: str
    name: str
    honour: Any
    level: Any
    awarded_year: Any
    organization_code: str

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        return tuple(
            ModelWorker.id_for(str(m)) for m in member_id_if_valid(member_ids, self.id_number)
        )

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        identity = IdNumber.parse(self.id_number)
        org = uow.org(self.organization_code, field="organization_code")
        member_id = str(uow.member_id_for(identity.value))
        worker = uow.get(ModelWorker.id_for(member_id))
        if isinstance(worker, ModelWorker):
            worker.add_honour(honour=self.honour, level=self.level, awarded_year=self.awarded_year)
        else:
            worker = ModelWorker.register(
                member_id=member_id,
                id_number=identity.value,
                name=self.name,
                organization=org,
                honour=self.honour,
                level=self.level,
                awarded_year=self.awarded_year,
            )
            uow.add(worker)
        return model_worker_view(worker)


@dataclass(frozen=True, kw_only=True, eq=False)
class RevokeModelWorker(Command):
    """撤销: the honours are withdrawn from revoked_on."""

    NAME = "revoke_model_worker"
    model_worker_id: str
    revoked_on: Any
    reason: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        worker = model_worker_in(uow, self.model_worker_id)
        worker.revoke(
            revoked_on=parse_date(self.revoked_on, field="revoked_on"), reason=self.reason
        )
        return model_worker_view(worker)
