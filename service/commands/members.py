"""Membership commands: 入会 (join, also of a roster's chunk), 转出/转入 (transfer started,
accepted, cancelled), 保留会籍 (retain), 恢复 (reinstate), 除名/退会 (exit), 更正 (correct)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.errors import DomainError, InvalidValue
from domain.identity import IdNumber
from domain.members import Member
from domain.organizations import Admissions, Organization
from domain.period import parse_date
from service.commands.base import Command
from service.results import member_view
from service.unit_of_work import UnitOfWork
from storage.keys import MemberIds


def admit(
    uow: UnitOfWork,
    org: Organization,
    identity: IdNumber,
    row: dict[str, Any],
    member_id: UUID | None = None,
    admissions: Admissions | None = None,
) -> Member:
    """入会 of one person into org: a new member, or a person who left joining again.
    member_id: the person's id if already derived; admissions: see Member.join."""
    day = parse_date(row["joined_on"], field="joined_on")
    if member_id is None:
        member_id = uow.member_id_for(identity.value)
    details = dict(
        name=row["name"],
        mobile=row.get("mobile"),
        migrant_worker=row.get("migrant_worker", False),
        new_employment_form=row.get("new_employment_form", False),
    )
    existing = uow.get(member_id, snapshotted=False)
    if existing is None:
        member = Member.join(
            member_id=member_id,
            id_number=identity,
            organization=org,
            joined_on=day,
            admissions=admissions,
            **details,
        )
        uow.add(member)
    else:
        member = existing
        member.rejoin(organization=org, joined_on=day, admissions=admissions, **details)
    return member


def member_id_if_valid(member_ids: MemberIds, id_number: Any) -> tuple[UUID, ...]:
    """The member id a join will look for, if the number is valid (the command itself
    reports an invalid one)."""
    try:
        return (member_ids.for_id_number(IdNumber.parse(id_number).value),)
    except (DomainError, TypeError, ValueError, AttributeError):
        return ()


@dataclass(frozen=True, kw_only=True, eq=False)
class JoinMember(Command):
    """入会, or 入会 again for a person who left; refused for a current member anywhere."""

    NAME = "join_member"
    id_number: str
    name: str
    organization_code: str
    joined_on: Any
    mobile: str | None = None
    migrant_worker: bool = False
    new_employment_form: bool = False

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        return member_id_if_valid(member_ids, self.id_number)

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        identity = IdNumber.parse(self.id_number)
        org = uow.org(self.organization_code, field="organization_code")
        return member_view(admit(uow, org, identity, self.request()))


@dataclass(frozen=True, kw_only=True, eq=False)
class JoinMembers(Command):
    """入会 of many people into one union: one chunk of a roster import (service/imports.py).

    rows: (row number, the row's fields) each. Each row is accepted or refused on its own; the
    answer lists the outcome of each, in order: {row, member_id} or {row, field, reason}. The
    union's roll takes the accepted members in one MembersAdmitted event."""

    NAME = "join_members"
    organization_code: str
    rows: list[tuple[int, dict[str, Any]]]
    # Identity numbers parsed and member ids derived by the caller, once, in its own thread
    # (the writer only decides): per row an IdNumber and its id, or the InvalidValue refusing
    # the row. Not part of the request: it follows from the rows.
    prepared: list[tuple[IdNumber | InvalidValue, UUID | None]] = field(default_factory=list)

    @classmethod
    def prepare(
        cls, member_ids: MemberIds, organization_code: str, rows: list[tuple[int, dict[str, Any]]]
    ) -> JoinMembers:
        prepared: list[tuple[IdNumber | InvalidValue, UUID | None]] = []
        for _, row in rows:
            try:
                identity = IdNumber.parse(row.get("id_number"))
            except InvalidValue as exc:
                prepared.append((exc, None))
            else:
                prepared.append((identity, member_ids.for_id_number(identity.value)))
        return cls(organization_code=organization_code, rows=rows, prepared=prepared)

    def request(self) -> dict[str, Any]:
        return {"organization_code": self.organization_code, "rows": self.rows}

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        return tuple(member_id for _, member_id in self.prepared if member_id is not None)

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.organization_code, field="organization_code")
        admissions = Admissions(org)
        results: list[dict[str, Any]] = []
        for (number, row), (identity, member_id) in zip(self.rows, self.prepared, strict=True):
            if isinstance(identity, InvalidValue):
                results.append({"row": number, "field": identity.field, "reason": identity.reason})
                continue
            existing = uow.get(member_id, snapshotted=False) if member_id is not None else None
            before = (
                len(org.pending_events),
                len(admissions),
                None if existing is None else len(existing.pending_events),
            )
            try:
                member = admit(uow, org, identity, row, member_id, admissions)
            except DomainError as exc:
                # A refused row must leave no trace on what the chunk goes on to save.
                after = (
                    len(org.pending_events),
                    len(admissions),
                    None if existing is None else len(existing.pending_events),
                )
                if before != after or (existing is None and member_id in uow.aggregates):
                    raise RuntimeError(f"row {number} changed state and failed") from exc
                refused_field = exc.field if isinstance(exc, InvalidValue) else None
                reason = exc.reason if isinstance(exc, InvalidValue) else exc.message
                results.append({"row": number, "field": refused_field, "reason": reason})
            else:
                results.append({"row": number, "member_id": str(member.id)})
        admissions.record()
        return {"rows": results}


@dataclass(frozen=True, kw_only=True, eq=False)
class StartTransfer(Command):
    """转出: the releasing union starts a transfer; the member stays on its roll, pending."""

    NAME = "start_transfer"
    member_id: str
    to_organization_code: str
    effective_on: Any
    reason_code: int

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        target = uow.org(self.to_organization_code, field="to_organization_code")
        transfer_id = member.start_transfer(
            to_organization=target,
            effective_on=parse_date(self.effective_on, field="effective_on"),
            reason_code=self.reason_code,
        )
        return {"transfer_id": transfer_id, "status": "pending", "member": member_view(member)}


@dataclass(frozen=True, kw_only=True, eq=False)
class AcceptTransfer(Command):
    """转入: the receiving union accepts; the member moves onto its roll."""

    NAME = "accept_transfer"
    member_id: str
    transfer_id: str
    effective_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        pending = member._require_pending(self.transfer_id)
        member.accept_transfer(
            transfer_id=self.transfer_id,
            releasing=uow.org(member.organization_code),
            receiving=uow.org(pending["to_organization_code"]),
            effective_on=parse_date(self.effective_on, field="effective_on"),
        )
        return member_view(member)


@dataclass(frozen=True, kw_only=True, eq=False)
class CancelTransfer(Command):
    """The pending transfer is withdrawn; the member stays where it was."""

    NAME = "cancel_transfer"
    member_id: str
    transfer_id: str

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        member.cancel_transfer(transfer_id=self.transfer_id)
        return member_view(member)


@dataclass(frozen=True, kw_only=True, eq=False)
class RetainMember(Command):
    """保留会籍: retired, unemployed or laid-off members keep membership and pay no dues."""

    NAME = "retain_member"
    member_id: str
    effective_on: Any
    reason_code: int

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        member.retain(
            effective_on=parse_date(self.effective_on, field="effective_on"),
            reason_code=self.reason_code,
        )
        return member_view(member)


@dataclass(frozen=True, kw_only=True, eq=False)
class ReinstateMember(Command):
    """恢复会籍 after retention."""

    NAME = "reinstate_member"
    member_id: str
    effective_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        member.reinstate(effective_on=parse_date(self.effective_on, field="effective_on"))
        return member_view(member)


@dataclass(frozen=True, kw_only=True, eq=False)
class ExitMember(Command):
    """除名 (change code 5) or 退会 (6): the person leaves the roll and may join again later."""

    NAME = "exit_member"
    member_id: str
    effective_on: Any
    change_code: int
    reason_code: int

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        member.exit(
            organization=uow.org(member.organization_code),
            effective_on=parse_date(self.effective_on, field="effective_on"),
            change_code=self.change_code,
            reason_code=self.reason_code,
        )
        return member_view(member)


@dataclass(frozen=True, kw_only=True, eq=False)
class CorrectMember(Command):
    """更正 of name, mobile or the flags; the identity number itself never changes."""

    NAME = "correct_member"
    member_id: str
    changes: dict[str, Any]
    note: str | None = None

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        member = uow.member(self.member_id)
        member.correct(changes=self.changes, note=self.note)
        return member_view(member)
