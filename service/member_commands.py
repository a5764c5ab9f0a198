"""Membership commands of the ledger: 入会, 转出/转入, 保留会籍, 恢复, 除名/退会, 更正."""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from uuid import UUID

from domain.errors import (
    DomainError,
    InvalidValue,
    NotFound,
)
from domain.identity import IdNumber
from domain.members import Member
from domain.organizations import Admissions, Organization
from domain.period import parse_date
from service.group_commit import PendingCommand
from service.idempotency import IdempotencyKey
from service.results import member_view
from service.unit_of_work import CommandResult, UnitOfWork

IMPORT_CHUNK_ROWS = 1000
NO_SUCH_PERSON = "no member has this identity number"
# Chunks of one import handed to the writer before the first of them is answered.
IMPORT_CHUNKS_IN_FLIGHT = 4


def _chunk_outcomes(result: CommandResult) -> list[dict[str, Any]]:
    return [
        {**outcome, "replayed": result.replayed, "position": result.position}
        if "member_id" in outcome else outcome
        for outcome in result.body["rows"]
    ]


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
            org = uow.org(organization_code, field="organization_code")
            return member_view(self._admit(uow, org, identity, request))

        return self._run("join_member", request, idempotency, actor, decide,
                         may_create=self._member_id_if_valid(id_number))

    def _admit(self, uow: UnitOfWork, org: Organization, identity: IdNumber,
               row: dict[str, Any], member_id: UUID | None = None,
               admissions: Admissions | None = None) -> Member:
        """入会 of one person into org (a new member, or a person who left joining again).
        member_id: the person's id if already derived; admissions: see Member.join."""
        day = parse_date(row["joined_on"], field="joined_on")
        if member_id is None:
            member_id = self.member_ids.for_id_number(identity.value)
        details = dict(name=row["name"], mobile=row.get("mobile"),
                       migrant_worker=row.get("migrant_worker", False),
                       new_employment_form=row.get("new_employment_form", False))
        existing = uow.get(member_id)
        if existing is None:
            member = Member.join(member_id=member_id, id_number=identity, organization=org,
                                 joined_on=day, admissions=admissions, **details)
            uow.add(member)
        else:
            member = existing
            member.rejoin(organization=org, joined_on=day, admissions=admissions, **details)
        return member

    def join_members(
        self,
        *,
        organization_code: str,
        rows: list[tuple[int, dict[str, Any]]],
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> list[dict[str, Any]]:
        """入会 of many people into one union (a roster import), IMPORT_CHUNK_ROWS rows per
        command: one read of the union, one query for which people are already known, one
        write. Each row is accepted or refused on its own; the outcome of each, in order:
        {row, member_id, replayed, position} or {row, field, reason}.

        Each chunk keeps its own idempotency record under a key derived from the request's
        key and its row numbers, so a retried import joins nobody twice."""
        # Chunks are handed to the writer a few at a time: while it decides and writes one,
        # this thread prepares the next (identity numbers, member ids, the request's digest),
        # and chunks waiting together are written in one transaction. Outcomes stay in order.
        outcomes: list[dict[str, Any]] = []
        in_flight: deque[Future] = deque()
        try:
            for start in range(0, len(rows), IMPORT_CHUNK_ROWS):
                chunk = rows[start:start + IMPORT_CHUNK_ROWS]
                key = None
                if idempotency is not None:
                    # \x00 never occurs in a client's key: a chunk's key cannot collide with one.
                    key = IdempotencyKey(
                        idempotency.scope,
                        f"{idempotency.key}\x00rows:{chunk[0][0]}-{chunk[-1][0]}",
                    )
                if len(in_flight) >= IMPORT_CHUNKS_IN_FLIGHT:
                    outcomes += _chunk_outcomes(in_flight.popleft().result())
                in_flight.append(self._join_chunk(organization_code, chunk, actor, key))
            while in_flight:
                outcomes += _chunk_outcomes(in_flight.popleft().result())
        except BaseException:
            # Chunks already handed over finish (each under its own key) before this fails.
            for future in in_flight:
                with contextlib.suppress(BaseException):
                    future.result()
            raise
        return outcomes

    def _join_chunk(self, organization_code: str, chunk: list[tuple[int, dict[str, Any]]],
                    actor: str, idempotency: IdempotencyKey | None) -> Future:
        """Hands one chunk's command to the writer; the future's CommandResult has the rows'
        outcomes (see _chunk_outcomes)."""
        # Identity numbers are parsed and member ids derived here, once, in the caller's
        # thread: the writer only decides. A number that does not parse is that row's refusal.
        prepared: list[tuple[int, dict[str, Any], IdNumber | InvalidValue, UUID | None]] = []
        for number, row in chunk:
            try:
                identity = IdNumber.parse(row.get("id_number"))
            except InvalidValue as exc:
                prepared.append((number, row, exc, None))
            else:
                prepared.append((number, row, identity,
                                 self.member_ids.for_id_number(identity.value)))

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code, field="organization_code")
            # The union's roll takes the chunk's members in one MembersAdmitted event.
            admissions = Admissions(org)
            results: list[dict[str, Any]] = []
            for number, row, identity, member_id in prepared:
                if isinstance(identity, InvalidValue):
                    results.append({"row": number, "field": identity.field,
                                    "reason": identity.reason})
                    continue
                existing = uow.get(member_id)
                before = (len(org.pending_events), len(admissions),
                          None if existing is None else len(existing.pending_events))
                try:
                    member = self._admit(uow, org, identity, row, member_id, admissions)
                except DomainError as exc:
                    # A refused row must leave no trace on what the chunk goes on to save.
                    after = (len(org.pending_events), len(admissions),
                             None if existing is None else len(existing.pending_events))
                    if before != after or (existing is None and member_id in uow.aggregates):
                        raise RuntimeError(f"row {number} changed state and failed") from exc
                    field = exc.field if isinstance(exc, InvalidValue) else None
                    reason = exc.reason if isinstance(exc, InvalidValue) else exc.message
                    results.append({"row": number, "field": field, "reason": reason})
                else:
                    results.append({"row": number, "member_id": str(member.id)})
            admissions.record()
            return {"rows": results}

        ids = tuple(member_id for _, _, _, member_id in prepared if member_id is not None)
        request = {"organization_code": organization_code, "rows": chunk}
        return self.committer.enqueue(PendingCommand(
            "join_members", self.fingerprint("join_members", request), idempotency, actor, decide,
            ids))

    def _member_id_if_valid(self, id_number: Any) -> tuple[UUID, ...]:
        """The member id a join will look for, if the number is valid (the command itself
        reports an invalid one)."""
        try:
            return (self.member_id_for(id_number),)
        except (DomainError, TypeError, ValueError, AttributeError):
            return ()

    def find_member(self, id_number: str) -> dict[str, Any]:
        member = UnitOfWork(self).get(self.member_id_for(id_number))
        if not isinstance(member, Member):
            raise NotFound(NO_SUCH_PERSON)
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
