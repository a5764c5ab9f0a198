"""The ledger application: the one write API, shared by the HTTP layer and the command line.

Each command loads the aggregates it needs into a unit of work, lets the domain decide, and
saves every changed aggregate in one atomic write. A concurrent writer that changed one of
them first makes the write fail on the store's (id, version) constraint; the command is then
decided again on fresh state, a bounded number of times, and never loses an update.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from domain.accounts import PAYABLE_DOWN, PAYABLE_UP, PROGRAMME_ACCOUNTS, expense_account
from domain.base import LedgerAggregate, acting_as
from domain.errors import (
    IdempotencyKeyReused,
    InvalidStatus,
    InvalidValue,
    NoLevyPolicy,
    NotFound,
    RemittanceExceedsOwed,
    TreeViolation,
    VersionConflict,
)
from domain.funds import (
    dues_for_wage,
    dues_postings,
    expense_postings,
    founding_reserve_postings,
    levy_postings,
    person_subsidy_postings,
    remittance_postings,
    union_subsidy_postings,
)
from domain.identity import CreditCode, IdNumber, parse_region_code
from domain.levy import (
    SHARE_LEVELS,
    LevyPolicy,
    divide_owed,
    level_rank,
    levy_due,
    parse_shares,
    share_levy,
)
from domain.members import Member, parse_flag
from domain.money import Money
from domain.organisations import Deployment, Organisation, parse_level
from domain.period import Month, parse_date
from domain.policies import LevyPolicies
from domain.reserves import FoundingReserve
from domain.vouchers import Book, Posting, Voucher
from service.group_commit import BatchView, GroupCommitter, PendingCommand
from service.idempotency import IdempotencyKey, IdempotencyRecord, fingerprint
from service.results import member_view, organisation_view, voucher_view
from service.settings import Settings
from service.storage import (
    MemberIds,
    derive_key,
    eventsourcing_env,
    load_or_create_key,
    register_transcodings,
)

PROGRAMMES = tuple(PROGRAMME_ACCOUNTS)
MAX_TREE_DEPTH = 12  # national down to joint base is 7 levels; more means corrupt data
MAX_DUES_LINES = 100_000
MAX_TEXT_LENGTH = 500


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command returns: its view, the position of its last event, and whether this
    is a replay of an earlier request with the same idempotency key."""

    body: dict[str, Any]
    position: int | None
    replayed: bool = False


class UnitOfWork:
    """The aggregates one command has loaded or created; all are saved together."""

    def __init__(self, app: Ledger, view: BatchView | None = None) -> None:
        self.app = app
        self.view = view
        self.aggregates: dict[UUID, LedgerAggregate] = {}
        # The version each aggregate had when this command first saw it (0: created here).
        self.loaded_versions: dict[UUID, int] = {}

    def get(self, aggregate_id: UUID) -> Any | None:
        if aggregate_id in self.aggregates:
            return self.aggregates[aggregate_id]
        if self.view is not None:
            aggregate = self.view.copy_of(aggregate_id)
        else:
            try:
                aggregate = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                aggregate = None
        if aggregate is None:
            return None
        self.aggregates[aggregate_id] = aggregate
        self.loaded_versions[aggregate_id] = aggregate.version
        return aggregate

    def add(self, aggregate: LedgerAggregate) -> None:
        self.aggregates[aggregate.id] = aggregate
        self.loaded_versions.setdefault(aggregate.id, 0)

    def new_event_keys(self) -> list[tuple[UUID, int]]:
        """(aggregate id, version) of every event this command created."""
        return [
            (aggregate_id, version)
            for aggregate_id, aggregate in self.aggregates.items()
            for version in range(self.loaded_versions[aggregate_id] + 1, aggregate.version + 1)
        ]

    def org(self, code: str, *, field: str | None = None) -> Organisation:
        """An organisation by code. Named in a body field: 422; in the path: 404."""
        org = self.get(Organisation.id_for(code)) if isinstance(code, str) else None
        if org is None:
            if field is not None:
                raise InvalidValue(field, f"no organisation has code {str(code)[:40]!r}")
            raise NotFound(f"organisation {str(code)[:40]} not found")
        return org

    def member(self, member_id: str, *, field: str | None = None) -> Member:
        try:
            uuid = UUID(member_id)
        except (ValueError, TypeError, AttributeError):
            uuid = None
        member = self.get(uuid) if uuid is not None else None
        if not isinstance(member, Member):
            if field is not None:
                raise InvalidValue(field, f"no member has id {str(member_id)[:40]!r}")
            raise NotFound(f"member {str(member_id)[:40]} not found")
        return member

    def book(self, organization_code: str) -> Book:
        book = self.get(Book.id_for(organization_code))
        if book is None:
            book = Book(organization_code=organization_code)
            self.add(book)
        return book

    def policies(self) -> LevyPolicies:
        policies = self.get(LevyPolicies.ID)
        if policies is None:
            policies = LevyPolicies()
            self.add(policies)
        return policies

    def ancestors(self, org: Organisation, day: Any = None) -> list[Organisation]:
        """The organisations above org, nearest first (as of day, or now)."""
        result: list[Organisation] = []
        parent_code = org.parent_on(day) if day is not None else org.parent_code
        while parent_code is not None:
            if len(result) >= MAX_TREE_DEPTH:
                raise TreeViolation(f"the tree above {org.code} is deeper than {MAX_TREE_DEPTH}")
            parent = self.org(parent_code)
            result.append(parent)
            parent_code = parent.parent_on(day) if day is not None else parent.parent_code
        return result

    def post(
        self,
        kind: str,
        effective_on: Any,
        postings: list[Posting],
        details: dict[str, Any],
        reverses: str | None = None,
    ) -> Voucher:
        """Creates a voucher and records its postings in every organisation's book it touches.

        Each book checks its own rules (closed month, bank not below zero, payables not
        negative) before anything is recorded."""
        voucher = Voucher(
            id=uuid4(),
            kind=kind,
            effective_on=effective_on,
            postings=postings,
            details=details,
            reverses=reverses,
        )
        for code in voucher.organization_codes:
            self.book(code).record(str(voucher.id), effective_on, postings)
        self.add(voucher)
        return voucher


class Ledger(Application):
    """工会会员与经费账簿: the write API. One method per write of the HTTP contract."""

    name = "Ledger"
    # Organisations and books grow with every member and voucher; snapshots bound replay.
    snapshotting_intervals = {Organisation: 200, Book: 200}  # noqa: RUF012

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        master_key = load_or_create_key(settings)
        self.member_ids = MemberIds(derive_key(master_key, "member-id"))
        super().__init__(env=eventsourcing_env(settings, derive_key(master_key, "event-cipher")))
        self.committer = GroupCommitter(self)

    def close(self) -> None:
        self.committer.close()
        super().close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

    # --- the command runner ------------------------------------------------------------------

    def _run(
        self,
        command: str,
        request: dict[str, Any],
        idempotency: IdempotencyKey | None,
        actor: str,
        decide: Callable[[UnitOfWork], dict[str, Any]],
    ) -> CommandResult:
        """Every command goes through the process's one writer (service/group_commit.py)."""
        pending = PendingCommand(command, fingerprint(command, request), idempotency, actor, decide)
        return self.committer.submit(pending)

    def _attempt(self, uow: UnitOfWork, pending: PendingCommand) -> CommandResult | dict[str, Any]:
        """Decides a command once: an idempotent replay's result, or the new view (unsaved)."""
        idempotency = pending.idempotency
        if idempotency is not None:
            record = uow.get(idempotency.record_id)
            if record is not None:
                if record.fingerprint != pending.digest:
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used for a different request"
                    )
                keys = [(record.id, 1)] + [
                    (UUID(k.split(":")[0]), int(k.split(":")[1])) for k in record.event_keys
                ]
                return CommandResult(record.result, self.last_position_of(keys), replayed=True)
        with acting_as(pending.actor):
            body = pending.decide(uow)
            if idempotency is not None:
                event_keys = [f"{i.hex}:{v}" for i, v in uow.new_event_keys()]
                uow.add(
                    IdempotencyRecord(
                        id=idempotency.record_id,
                        command=pending.command,
                        fingerprint=pending.digest,
                        result=body,
                        event_keys=event_keys,
                    )
                )
        return body

    def _run_alone(self, pending: PendingCommand) -> CommandResult:
        """Decides and saves one command, deciding again after each version conflict."""
        for attempt in range(self.settings.conflict_retries):
            uow = UnitOfWork(self)
            outcome = self._attempt(uow, pending)
            if isinstance(outcome, CommandResult):
                return outcome
            try:
                recordings = self.save(*uow.aggregates.values())
            except IntegrityError:
                # Another writer got there first: decide again on what it wrote.
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            position = max((r.notification.id for r in recordings), default=None)
            return CommandResult(outcome, position)
        raise VersionConflict(
            f"{pending.command}: concurrent changes kept conflicting after "
            f"{self.settings.conflict_retries} attempts; try again"
        )

    def last_position_of(self, keys: list[tuple[UUID, int]]) -> int | None:
        """The greatest global position among stored events named by (aggregate id, version)."""
        recorder = self.recorder
        table = recorder.events_table_name  # type: ignore[attr-defined]
        is_sqlite = type(recorder).__module__.endswith("sqlite")
        column = "rowid" if is_sqlite else "notification_id"
        marker = "?" if is_sqlite else "%s"
        match = " OR ".join([f"(originator_id = {marker} AND originator_version = {marker})"] * len(keys))
        params: list[Any] = []
        for aggregate_id, version in keys:
            params += [aggregate_id.hex if is_sqlite else aggregate_id, version]
        sql = f"SELECT MAX({column}) AS position FROM {table} WHERE {match}"
        with recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return None if row is None or row["position"] is None else int(row["position"])

    def position_of(self, aggregate_id: UUID, version: int = 1) -> int | None:
        """The global position of one stored event."""
        return self.last_position_of([(aggregate_id, version)])

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    # --- organisations -----------------------------------------------------------------------

    def found_organization(
        self,
        *,
        code: str,
        name: str,
        level: str,
        parent_code: str | None,
        region_code: str,
        founded_on: Any,
        employer_code: str | None = None,
        employee_count: int | None = None,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """建会: founds a union under an active parent, or the deployment's one root."""
        request = dict(
            code=code, name=name, level=level, parent_code=parent_code, region_code=region_code,
            founded_on=founded_on, employer_code=employer_code, employee_count=employee_count,
        )

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            credit_code = CreditCode.parse(code, field="code")
            org_level = parse_level(level)
            region = parse_region_code(region_code)
            day = parse_date(founded_on, field="founded_on")
            employer = (
                CreditCode.parse(employer_code, field="employer_code") if employer_code else None
            )
            if uow.get(Organisation.id_for(credit_code.value)) is not None:
                raise TreeViolation(f"an organisation with code {credit_code.value} exists")
            parent = None
            if parent_code is None:
                if uow.get(Deployment.ID) is not None:
                    raise TreeViolation(
                        "the deployment has a root already; parent_code is required"
                    )
                uow.add(Deployment(root_code=credit_code.value))
            else:
                parent = uow.org(parent_code, field="parent_code")
            org = Organisation.found(
                code=credit_code,
                name=name,
                level=org_level,
                parent=parent,
                region_code=region,
                founded_on=day,
                employer_code=employer,
                employee_count=employee_count,
            )
            uow.add(org)
            if employer is not None:
                self._release_founding_reserve(uow, org, employer.value)
            return organisation_view(org)

        return self._run("found_organization", request, idempotency, actor, decide)

    def _release_founding_reserve(self, uow: UnitOfWork, org: Organisation, employer: str) -> None:
        """Shares out levies held for this employer before its union existed, like a levy."""
        reserve = uow.get(FoundingReserve.id_for(employer))
        if reserve is None or not reserve.held:
            return
        path_orgs = [org, *uow.ancestors(org, org.founded_on)]
        path = [(o.level, o.code) for o in path_orgs]
        ranks = {o.code: o.rank for o in path_orgs}
        for held_id, entry in sorted(reserve.held.items()):
            holder = entry["holder_code"]
            if holder not in ranks:
                continue  # held by a union outside this path: it stays held, visible on 215
            policy = uow.policies().in_force(org.region_code, Month.parse(entry["period"]).first_day)
            shares = share_levy(entry["amount"], policy.shares, path)
            postings = levy_postings(
                holder, ranks[holder], shares, from_account="215", from_counterparty=employer
            )
            voucher = uow.post(
                "founding_reserve_release",
                org.founded_on,
                postings,
                {"employer_code": employer, "base_organization_code": org.code,
                 "period": entry["period"], "held_voucher_id": held_id},
            )
            reserve.release(
                held_voucher_id=held_id, release_voucher_id=str(voucher.id), base_code=org.code
            )

    def change_organization(
        self,
        code: str,
        *,
        effective_on: Any,
        name: str | None = None,
        parent_code: str | None = None,
        employee_count: int | None = None,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        request = dict(code=code, effective_on=effective_on, name=name, parent_code=parent_code,
                       employee_count=employee_count)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(code)
            day = parse_date(effective_on, field="effective_on")
            new_parent = None
            ancestors: list[str] = []
            if parent_code is not None and parent_code != org.parent_code:
                new_parent = uow.org(parent_code, field="parent_code")
                ancestors = [a.code for a in uow.ancestors(new_parent)]
            old_parent_code = org.parent_code
            org.change(
                effective_on=day,
                name=name,
                employee_count=employee_count,
                new_parent=new_parent,
                new_parent_ancestors=ancestors,
            )
            if new_parent is not None and old_parent_code is not None:
                uow.org(old_parent_code).detach_child(org.code)
                new_parent.attach_child(org.code)
            return organisation_view(org)

        return self._run("change_organization", request, idempotency, actor, decide)

    def dissolve_organization(
        self,
        code: str,
        *,
        dissolved_on: Any,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        request = dict(code=code, dissolved_on=dissolved_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(code)
            org.dissolve(parse_date(dissolved_on, field="dissolved_on"))
            if org.parent_code is not None:
                uow.org(org.parent_code).detach_child(org.code)
            return organisation_view(org)

        return self._run("dissolve_organization", request, idempotency, actor, decide)

    def get_organization(self, code: str) -> dict[str, Any]:
        return organisation_view(UnitOfWork(self).org(code))

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

    # --- levy policies -------------------------------------------------------------------------

    def adopt_levy_policy(
        self, *, region_code: str, effective_from: Any, shares: dict[str, str],
        actor: str = "system", idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        request = dict(region_code=region_code, effective_from=effective_from, shares=shares)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            policy = LevyPolicy(
                region_prefix=parse_region_code(region_code, lengths=(2, 4, 6)),
                effective_from=parse_date(effective_from, field="effective_from"),
                shares=parse_shares(shares),
            )
            uow.policies().adopt(policy)
            return policy_view(policy)

        return self._run("adopt_levy_policy", request, idempotency, actor, decide)

    def levy_policy_in_force(self, region_code: str, on: Any) -> dict[str, Any]:
        region = parse_region_code(region_code, lengths=(2, 4, 6))
        day = parse_date(on, field="on")
        policies = UnitOfWork(self).get(LevyPolicies.ID)
        if policies is None:
            raise NotFound("no levy policy has been recorded")
        try:
            return policy_view(policies.in_force(region, day))
        except NoLevyPolicy as exc:
            raise NotFound(exc.message) from None

    # --- funds -----------------------------------------------------------------------------------

    def record_dues(
        self, *, organization_code: str, period: str, amount: str, received_on: Any,
        members: list[dict[str, Any]] | None = None, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """会费: 0.5% of each member's wage, kept whole by the base union (Dr 102, Cr 401)."""
        request = dict(organization_code=organization_code, period=period, amount=amount,
                       received_on=received_on, members=members)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code, field="organization_code")
            org.require_active()
            if not org.is_base:
                raise InvalidValue("organization_code", "dues are paid to a base union")
            month = Month.parse(period)
            money = Money.parse_positive(amount)
            day = parse_date(received_on, field="received_on")
            lines = self._dues_lines(uow, org, members, money) if members is not None else None
            details: dict[str, Any] = {"period": str(month)}
            if lines is not None:
                details["members"] = lines
            voucher = uow.post("dues", day, dues_postings(org.code, money), details)
            return voucher_view(voucher)

        return self._run("record_dues", request, idempotency, actor, decide)

    def _dues_lines(
        self, uow: UnitOfWork, org: Organisation, members: list[dict[str, Any]], amount: Money
    ) -> list[dict[str, str]]:
        if not isinstance(members, list) or len(members) > MAX_DUES_LINES:
            raise InvalidValue("members", f"a list of at most {MAX_DUES_LINES} members")
        lines: list[dict[str, str]] = []
        seen: set[str] = set()
        total_fen = 0
        for i, line in enumerate(members):
            field = f"members[{i}]"
            if not isinstance(line, dict):
                raise InvalidValue(field, "each line has member_id, wage and amount")
            member = uow.member(line.get("member_id"), field=f"{field}.member_id")
            if str(member.id) in seen:
                raise InvalidValue(f"{field}.member_id", "a member appears twice")
            seen.add(str(member.id))
            if member.organization_code != org.code or not member.is_member:
                raise InvalidValue(f"{field}.member_id", f"not on the roll of {org.code}")
            if member.status == "retained":
                raise InvalidValue(f"{field}.member_id", "retained members pay no dues")
            wage = Money.parse_positive(line.get("wage"), field=f"{field}.wage")
            dues = Money.parse_positive(line.get("amount"), field=f"{field}.amount")
            if dues != dues_for_wage(wage):
                raise InvalidValue(
                    f"{field}.amount", f"0.5% of {wage} is {dues_for_wage(wage)}, not {dues}"
                )
            total_fen += dues.fen
            lines.append({"member_id": str(member.id), "wage": str(wage), "amount": str(dues)})
        if total_fen != amount.fen:
            raise InvalidValue("amount", f"the members' dues add up to {Money(total_fen)}")
        return lines

    def record_levy(
        self, *, receiving_organization_code: str, base_organization_code: str | None,
        employer_code: str, period: str, payroll_total: str, amount: str, channel: str,
        received_on: Any, actor: str = "system", idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """拨缴经费: 2% of payroll, shared up the tree by the policy in force."""
        request = dict(
            receiving_organization_code=receiving_organization_code,
            base_organization_code=base_organization_code, employer_code=employer_code,
            period=period, payroll_total=payroll_total, amount=amount, channel=channel,
            received_on=received_on,
        )

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            receiver = uow.org(receiving_organization_code, field="receiving_organization_code")
            receiver.require_active("receiving organisation")
            employer = CreditCode.parse(employer_code, field="employer_code")
            month = Month.parse(period)
            payroll = Money.parse_positive(payroll_total, field="payroll_total")
            money = Money.parse_positive(amount)
            if channel not in ("employer", "tax"):
                raise InvalidValue("channel", "channel is employer or tax")
            day = parse_date(received_on, field="received_on")
            if levy_due(payroll) != money:
                raise InvalidValue(
                    "amount", f"2% of payroll {payroll} is {levy_due(payroll)}, not {money}"
                )
            details = {"employer_code": employer.value, "period": str(month),
                       "payroll_total": str(payroll), "channel": channel,
                       "base_organization_code": base_organization_code}
            if base_organization_code is None:
                return self._hold_founding_reserve(uow, receiver, employer.value, month, money,
                                                   day, details)
            base = uow.org(base_organization_code, field="base_organization_code")
            if not base.is_base:
                raise InvalidValue("base_organization_code", "not a base or joint base union")
            if base.level == "base" and base.employer_code != employer.value:
                raise InvalidValue(
                    "employer_code", f"{base.code} sits in employer {base.employer_code}"
                )
            path_orgs = [base, *uow.ancestors(base, day)]
            if channel == "employer" and receiver.code != base.code:
                raise InvalidValue(
                    "receiving_organization_code", "through the employer channel the base union receives"
                )
            if channel == "tax" and receiver.code not in [o.code for o in path_orgs[1:]]:
                raise InvalidValue(
                    "receiving_organization_code",
                    "through the tax channel a union above the base union receives",
                )
            policy = uow.policies().in_force(base.region_code, month.first_day)
            shares = share_levy(money, policy.shares, [(o.level, o.code) for o in path_orgs])
            details["policy"] = policy_view(policy)
            voucher = uow.post("levy", day, levy_postings(receiver.code, receiver.rank, shares),
                               details)
            return voucher_view(voucher)

        return self._run("record_levy", request, idempotency, actor, decide)

    def _hold_founding_reserve(self, uow, receiver, employer, month, money, day, details):
        if receiver.is_base:
            raise InvalidValue(
                "receiving_organization_code", "a founding reserve is held by a higher union"
            )
        voucher = uow.post("founding_reserve", day,
                           founding_reserve_postings(receiver.code, employer, money), details)
        reserve = uow.get(FoundingReserve.id_for(employer))
        if reserve is None:
            reserve = FoundingReserve(employer_code=employer)
            uow.add(reserve)
        reserve.hold(voucher_id=str(voucher.id), holder_code=receiver.code, period=str(month),
                     amount=money)
        return voucher_view(voucher)

    def record_remittance(
        self, *, from_organization_code: str, to_organization_code: str, kind: str,
        amount: str, period: str, paid_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """上解 (upward) or 回拨 (pass_down): clears what the payer owes towards the receiver."""
        request = dict(from_organization_code=from_organization_code,
                       to_organization_code=to_organization_code, kind=kind, amount=amount,
                       period=period, paid_on=paid_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            payer = uow.org(from_organization_code, field="from_organization_code")
            receiver = uow.org(to_organization_code, field="to_organization_code")
            if kind not in ("upward", "pass_down"):
                raise InvalidValue("kind", "kind is upward or pass_down")
            money = Money.parse_positive(amount)
            month = Month.parse(period)
            day = parse_date(paid_on, field="paid_on")
            upward = kind == "upward"
            if upward and payer.parent_on(day) != receiver.code:
                raise InvalidValue("to_organization_code", "an upward remittance goes to the parent")
            if not upward and receiver.parent_on(day) != payer.code:
                raise InvalidValue("to_organization_code", "a pass-down goes to a direct child")
            owed = self._owed_towards(uow, payer, receiver, upward, day)
            owed_total = sum(m.fen for _, _, m in owed)
            if money.fen > owed_total:
                raise RemittanceExceedsOwed(
                    f"{payer.code} owes {receiver.code} {Money(owed_total)} on "
                    f"{PAYABLE_UP if upward else PAYABLE_DOWN}; {money} is more"
                )
            parts = divide_owed(money, owed)
            postings = remittance_postings(payer.code, receiver.code, parts, upward=upward)
            details = {"kind": kind, "period": str(month),
                       "parts": {c: str(m) for c, m in parts}}
            return voucher_view(uow.post("remittance", day, postings, details))

        return self._run("record_remittance", request, idempotency, actor, decide)

    def _owed_towards(self, uow, payer, receiver, upward, day) -> list[tuple[int, str, Money]]:
        """What payer owes to receiver and the levels beyond it, by counterparty, with ranks."""
        book = uow.book(payer.code)
        owed = book.owed(PAYABLE_UP if upward else PAYABLE_DOWN)
        result = []
        if upward:
            beyond = {receiver.code: receiver.rank}
            beyond.update({a.code: a.rank for a in uow.ancestors(receiver, day)})
            for counterparty, money in owed.items():
                if counterparty in SHARE_LEVELS:
                    result.append((level_rank(counterparty), counterparty, money))
                elif counterparty in beyond:
                    result.append((beyond[counterparty], counterparty, money))
        else:
            for counterparty, money in owed.items():
                if counterparty in SHARE_LEVELS:
                    continue
                org = uow.org(counterparty)
                chain = [org.code] + [a.code for a in uow.ancestors(org, day)]
                if receiver.code in chain:
                    result.append((org.rank, counterparty, money))
        return [r for r in result if r[2].fen > 0]

    def pay_subsidy(
        self, *, payer_organization_code: str, recipient: dict[str, str], programme: str,
        amount: str, earmarked: bool, approval_ref: str, paid_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """补助: to a real-name member (帮扶, 助学, 劳模, 托育, 慰问) or to a lower union."""
        request = dict(payer_organization_code=payer_organization_code, recipient=recipient,
                       programme=programme, amount=amount, earmarked=earmarked,
                       approval_ref=approval_ref, paid_on=paid_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            payer = uow.org(payer_organization_code, field="payer_organization_code")
            payer.require_active("paying organisation")
            if programme not in PROGRAMMES:
                raise InvalidValue("programme", f"programme is one of {', '.join(PROGRAMMES)}")
            money = Money.parse_positive(amount)
            flag = parse_flag(earmarked, "earmarked")
            reference = _text(approval_ref, "approval_ref", 64)
            day = parse_date(paid_on, field="paid_on")
            if not isinstance(recipient, dict) or len(recipient) != 1:
                raise InvalidValue("recipient", "recipient is {member_id} or {organization_code}")
            details: dict[str, Any] = {"programme": programme, "approval_ref": reference}
            if "member_id" in recipient:
                member = uow.member(recipient["member_id"], field="recipient.member_id")
                if not member.is_member:
                    raise InvalidStatus("the recipient is no longer a member")
                home = uow.org(member.organization_code)
                if payer.code not in [home.code] + [a.code for a in uow.ancestors(home)]:
                    raise InvalidValue("recipient.member_id", f"not a member under {payer.code}")
                details["member_id"] = str(member.id)
                postings = person_subsidy_postings(
                    payer.code, PROGRAMME_ACCOUNTS[programme], money, flag
                )
            elif "organization_code" in recipient:
                target = uow.org(recipient["organization_code"], field="recipient.organization_code")
                target.require_active("recipient organisation")
                if payer.code not in [a.code for a in uow.ancestors(target)]:
                    raise InvalidValue(
                        "recipient.organization_code", f"not a union below {payer.code}"
                    )
                details["organization_code"] = target.code
                postings = union_subsidy_postings(payer.code, target.code, money, flag)
            else:
                raise InvalidValue("recipient", "recipient is {member_id} or {organization_code}")
            return voucher_view(uow.post("subsidy", day, postings, details))

        return self._run("pay_subsidy", request, idempotency, actor, decide)

    def record_expense(
        self, *, organization_code: str, account_code: str, amount: str, earmarked: bool,
        description: str, paid_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        request = dict(organization_code=organization_code, account_code=account_code,
                       amount=amount, earmarked=earmarked, description=description,
                       paid_on=paid_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code, field="organization_code")
            org.require_active()
            acct = expense_account(account_code)
            money = Money.parse_positive(amount)
            flag = parse_flag(earmarked, "earmarked")
            text = _text(description, "description", MAX_TEXT_LENGTH)
            day = parse_date(paid_on, field="paid_on")
            postings = expense_postings(org.code, acct.code, money, flag)
            return voucher_view(uow.post("expense", day, postings, {"description": text}))

        return self._run("record_expense", request, idempotency, actor, decide)

    def reverse_voucher(
        self, voucher_id: str, *, effective_on: Any, reason: str, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """红字冲销: a new voucher with the original's postings swapped."""
        request = dict(voucher_id=voucher_id, effective_on=effective_on, reason=reason)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            original = self._voucher(uow, voucher_id)
            # Named first: a second reversal is AlreadyReversed, not whatever its postings hit.
            original.check_reversible()
            day = parse_date(effective_on, field="effective_on")
            text = _text(reason, "reason", MAX_TEXT_LENGTH)
            if day < original.effective_on:
                raise InvalidValue("effective_on", "a reversal cannot predate the voucher")
            if original.kind == "founding_reserve_release":
                raise InvalidStatus("a shared-out founding reserve cannot be reversed")
            if original.kind == "founding_reserve":
                reserve = uow.get(FoundingReserve.id_for(original.details["employer_code"]))
                if reserve is None or str(original.id) not in reserve.held:
                    raise InvalidStatus("this founding reserve was already shared out")
                reserve.withdraw(str(original.id))
            reversal = uow.post(
                "reversal", day, [p.swapped() for p in original.postings],
                {"reason": text, "reverses_kind": original.kind}, reverses=str(original.id),
            )
            original.mark_reversed(str(reversal.id))
            return voucher_view(reversal)

        return self._run("reverse_voucher", request, idempotency, actor, decide)

    def _voucher(self, uow: UnitOfWork, voucher_id: str) -> Voucher:
        try:
            uuid = UUID(voucher_id)
        except (ValueError, TypeError, AttributeError):
            raise NotFound(f"voucher {str(voucher_id)[:40]} not found") from None
        voucher = uow.get(uuid)
        if not isinstance(voucher, Voucher):
            raise NotFound(f"voucher {voucher_id} not found")
        return voucher

    def get_voucher(self, voucher_id: str) -> dict[str, Any]:
        return voucher_view(self._voucher(UnitOfWork(self), voucher_id))

    def close_period(
        self, organization_code: str, *, period: str, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """月结: the month takes no new postings dated inside it."""
        request = dict(organization_code=organization_code, period=period)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code)
            month = Month.parse(period)
            uow.book(org.code).close_month(month)
            return {"organization_code": org.code, "period": str(month), "closed": True}

        return self._run("close_period", request, idempotency, actor, decide)

    # --- state for checks and tests ------------------------------------------------------------

    def get_book(self, organization_code: str) -> Book | None:
        return UnitOfWork(self).get(Book.id_for(organization_code))


def policy_view(policy: LevyPolicy) -> dict[str, Any]:
    from domain.levy import format_percent

    return {
        "region_code": policy.region_prefix,
        "effective_from": policy.effective_from.isoformat(),
        "shares": {level: format_percent(pct) for level, pct in policy.shares.items()},
    }


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, "cannot be empty")
    if len(value) > limit:
        raise InvalidValue(field, f"at most {limit} characters")
    if any(not ch.isprintable() for ch in value):
        raise InvalidValue(field, "cannot contain control characters")
    return value.strip()
