"""Membership commands of the ledger: 入会, 转出/转入, 保留会籍, 恢复, 除名/退会, 更正."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from domain.errors import (
    NotFound,
)
from domain.identity import IdNumber
from domain.members import Member
from domain.period import parse_date
from service.idempotency import IdempotencyKey
from service.results import member_view
from service.unit_of_work import CommandResult, UnitOfWork


class MemberCommands:
    """Command methods mixed into Ledger (service/application.py), which supplies _run."""

    # --- members -------------------------------------------------------------------------------

    def member_id_for(self, id_number: str) -> UUID:
        return self.member_ids.for_id_number(IdNumber.parse(id_number).value)

    def join_member(
        self,
        *,
        id_number: str,
        name: str,
        organization_code: str,
        joined_on: Any,
        mobile: str | None = None,
        migrant_worker: bool = False,
        new_employment_form: bool = False,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """入会, or 入会 again for a person who left; refused for a current member anywhere."""
        request = dict(
            id_number=id_number, name=name, organization_code=organization_code,
            joined_on=joined_on, mobile=mobile, migrant_worker=migrant_worker,
            new_employment_form=new_employment_form,
        )

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            identity = IdNumber.parse(id_number)
            day = parse_date(joined_on, field="joined_on")
            org = uow.org(organization_code, field="organization_code")
            member_id = self.member_ids.for_id_number(identity.value)
            existing = uow.get(member_id)
            if existing is None:
                member = Member.join(
                    member_id=member_id, id_number=identity, name=name, mobile=mobile,
                    migrant_worker=migrant_worker, new_employment_form=new_employment_form,
                    organization=org, joined_on=day,
                )
                uow.add(member)
            else:
                member = existing
                member.rejoin(
                    name=name, mobile=mobile, migrant_worker=migrant_worker,
                    new_employment_form=new_employment_form, organization=org, joined_on=day,
                )
            return member_view(member)

        return self._run("join_member", request, idempotency, actor, decide)

    def find_member(self, id_number: str) -> dict[str, Any]:
        member = UnitOfWork(self).get(self.member_id_for(id_number))
        if not isinstance(member, Member):
            raise NotFound("no member has this identity number")
        return member_view(member)

    def get_member(self, member_id: str) -> dict[str, Any]:
        return member_view(UnitOfWork(self).member(member_id))

    def start_transfer(
        self,
        member_id: str,
        *,
        to_organization_code: str,
        effective_on: Any,
        reason_code: int,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """转出: the releasing union starts a transfer to the receiving union."""
        request = dict(member_id=member_id, to_organization_code=to_organization_code,
                       effective_on=effective_on, reason_code=reason_code)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            member = uow.member(member_id)
            target = uow.org(to_organization_code, field="to_organization_code")
            transfer_id = member.start_transfer(
                to_organization=target,
                effective_on=parse_date(effective_on, field="effective_on"),
                reason_code=reason_code,
            )
            return {"transfer_id": transfer_id, "status": "pending", "member": member_view(member)}

        return self._run("start_transfer", request, idempotency, actor, decide)

    def accept_transfer(
        self,
        member_id: str,
        transfer_id: str,
        *,
        effective_on: Any,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """转入: the receiving union accepts; the member moves onto its roll."""
        request = dict(member_id=member_id, transfer_id=transfer_id, effective_on=effective_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            member = uow.member(member_id)
            pending = member._require_pending(transfer_id)
            member.accept_transfer(
                transfer_id=transfer_id,
                releasing=uow.org(member.organization_code),
                receiving=uow.org(pending["to_organization_code"]),
                effective_on=parse_date(effective_on, field="effective_on"),
            )
            return member_view(member)

        return self._run("accept_transfer", request, idempotency, actor, decide)

    def _member_command(
        self,
        command: str,
        member_id: str,
        request: dict[str, Any],
        actor: str,
        idempotency: IdempotencyKey | None,
        act: Callable[[UnitOfWork, Member], None],
    ) -> CommandResult:
        def decide(uow: UnitOfWork) -> dict[str, Any]:
            member = uow.member(member_id)
            act(uow, member)
            return member_view(member)

        return self._run(command, {"member_id": member_id, **request}, idempotency, actor, decide)

    def cancel_transfer(
        self, member_id: str, transfer_id: str, *, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._member_command(
            "cancel_transfer", member_id, {"transfer_id": transfer_id}, actor, idempotency,
            lambda uow, m: m.cancel_transfer(transfer_id=transfer_id),
        )

    def retain_member(
        self, member_id: str, *, effective_on: Any, reason_code: int, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """保留会籍"""
        return self._member_command(
            "retain_member", member_id,
            {"effective_on": effective_on, "reason_code": reason_code}, actor, idempotency,
            lambda uow, m: m.retain(
                effective_on=parse_date(effective_on, field="effective_on"),
                reason_code=reason_code,
            ),
        )

    def reinstate_member(
        self, member_id: str, *, effective_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._member_command(
            "reinstate_member", member_id, {"effective_on": effective_on}, actor, idempotency,
            lambda uow, m: m.reinstate(effective_on=parse_date(effective_on, field="effective_on")),
        )

    def exit_member(
        self, member_id: str, *, effective_on: Any, change_code: int, reason_code: int,
        actor: str = "system", idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """除名 (5) or 退会 (6)."""
        return self._member_command(
            "exit_member", member_id,
            {"effective_on": effective_on, "change_code": change_code, "reason_code": reason_code},
            actor, idempotency,
            lambda uow, m: m.exit(
                organization=uow.org(m.organization_code),
                effective_on=parse_date(effective_on, field="effective_on"),
                change_code=change_code,
                reason_code=reason_code,
            ),
        )

    def correct_member(
        self, member_id: str, *, changes: dict[str, Any], note: str | None = None,
        actor: str = "system", idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        return self._member_command(
            "correct_member", member_id, {"changes": changes, "note": note}, actor, idempotency,
            lambda uow, m: m.correct(changes=changes, note=note),
        )
