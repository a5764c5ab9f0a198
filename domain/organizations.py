"""Organisations (工会组织): a tree of unions from the deployment's root down to base unions."""

from __future__ import annotations

import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import (
    AlreadyExists,
    InvalidValue,
    OrganizationInUse,
    OrganizationNotActive,
    TreeViolation,
)
from domain.identity import CreditCode
from domain.levy import ORG_LEVELS, level_rank

BASE_LEVELS = frozenset({"base", "joint_base"})
MAX_NAME_LENGTH = 100
MAX_EMPLOYEE_COUNT = 10_000_000


def parse_name(text: str, *, field: str = "name") -> str:
    if not isinstance(text, str):
        raise InvalidValue(field, "a name is a string")
    name = text.strip()
    if not name:
        raise InvalidValue(field, "a name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidValue(field, f"a name has at most {MAX_NAME_LENGTH} characters")
    if any(not ch.isprintable() for ch in name):
        raise InvalidValue(field, "a name cannot contain control characters")
    return name


def parse_level(text: str) -> str:
    if text not in ORG_LEVELS:
        raise InvalidValue("level", f"level is one of {', '.join(ORG_LEVELS)}")
    return text


def parse_employee_count(value: int | None, *, required: bool) -> int | None:
    if value is None:
        if required:
            raise InvalidValue("employee_count", "a base union reports its number of employees")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue("employee_count", "the number of employees is a whole number")
    if not 0 <= value <= MAX_EMPLOYEE_COUNT:
        raise InvalidValue("employee_count", f"must be between 0 and {MAX_EMPLOYEE_COUNT}")
    return value


@stable_topic("ledger:Deployment")
class Deployment(LedgerAggregate):
    """The one deployment: it names its root organisation, so that there is only one root."""

    ID = stable_id("deployment", "root")

    @staticmethod
    def create_id(**_: object) -> UUID:
        return Deployment.ID

    @event("RootFounded", topic="ledger:Deployment.RootFounded")
    def __init__(self, root_code: str) -> None:
        self.root_code = root_code


@stable_topic("ledger:Organisation")
class Organization(LedgerAggregate):
    """工会组织: one union, identified by its own unified social credit code."""

    @staticmethod
    def id_for(code: str) -> UUID:
        return stable_id("organisation", code)

    @staticmethod
    def create_id(code: str, **_: object) -> UUID:
        return Organization.id_for(code)

    @event("Founded", topic="ledger:Organisation.Founded")
    def __init__(
        self,
        code: str,
        name: str,
        level: str,
        parent_code: str | None,
        region_code: str,
        founded_on: datetime.date,
        employer_code: str | None,
        employee_count: int | None,
    ) -> None:
        self.code = code
        self.name = name
        self.level = level
        self.region_code = region_code
        self.founded_on = founded_on
        self.employer_code = employer_code
        self.employee_count = employee_count
        self.status = "active"
        self.dissolved_on: datetime.date | None = None
        # (effective date, parent code): the tree over time, for levy paths at past dates.
        self.parent_history: list[tuple[datetime.date, str | None]] = [(founded_on, parent_code)]
        # Lists and counts rather than sets: aggregate state must survive JSON snapshots.
        self.active_children: list[str] = []
        self.member_count = 0

    # --- queries -------------------------------------------------------------------------

    @property
    def parent_code(self) -> str | None:
        return self.parent_history[-1][1]

    def parent_on(self, day: datetime.date) -> str | None:
        """The parent as of a date; before the founding date, the founding parent."""
        parent = self.parent_history[0][1]
        for effective_on, code in self.parent_history:
            if effective_on <= day:
                parent = code
        return parent

    @property
    def rank(self) -> int:
        return level_rank(self.level)

    @property
    def is_base(self) -> bool:
        return self.level in BASE_LEVELS

    def require_active(self, role: str = "organisation") -> None:
        if self.status != "active":
            raise OrganizationNotActive(f"{role} {self.code} ({self.name}) is dissolved")

    # --- commands --------------------------------------------------------------------------

    @classmethod
    def found(
        cls,
        *,
        code: CreditCode,
        name: str,
        level: str,
        parent: Organization | None,
        region_code: str,
        founded_on: datetime.date,
        employer_code: CreditCode | None,
        employee_count: int | None,
    ) -> Organization:
        """建会: validates against the parent and attaches the new union under it."""
        if not code.is_union:
            raise InvalidValue("code", "a union's credit code starts with 8 (trade unions)")
        base = level in BASE_LEVELS
        if base and code.value[1] != "1":
            raise InvalidValue("code", "a base union's credit code starts with 81")
        if not base and code.value[1] != "9":
            raise InvalidValue("code", "a union above the base level has a code starting with 89")
        if code.division_code != region_code:
            raise InvalidValue(
                "region_code",
                f"region_code {region_code} differs from the code's division {code.division_code}",
            )
        if base and employer_code is None and level == "base":
            raise InvalidValue("employer_code", "a base union records its employer's credit code")
        if not base and employer_code is not None:
            raise InvalidValue("employer_code", "only base unions record an employer")
        employee_count = parse_employee_count(employee_count, required=base)
        if parent is not None:
            parent.require_active("parent organisation")
            if parent.rank <= level_rank(level):
                raise TreeViolation(
                    f"a {level} union cannot sit under a {parent.level} union ({parent.code})"
                )
            if founded_on < parent.founded_on:
                raise InvalidValue("founded_on", "a union cannot be founded before its parent")
        org = cls(
            code=code.value,
            name=parse_name(name),
            level=level,
            parent_code=parent.code if parent else None,
            region_code=region_code,
            founded_on=founded_on,
            employer_code=employer_code.value if employer_code else None,
            employee_count=employee_count,
        )
        if parent is not None:
            parent.attach_child(org.code)
        return org

    def change(
        self,
        *,
        effective_on: datetime.date,
        name: str | None,
        employee_count: int | None,
        new_parent: Organization | None,
        new_parent_ancestors: list[str],
    ) -> None:
        """Renames, re-counts or moves the union. new_parent_ancestors: codes above new_parent."""
        self.require_active()
        if effective_on < self.parent_history[-1][0]:
            raise InvalidValue("effective_on", "a change cannot predate the last change")
        if name is not None:
            name = parse_name(name)
        if employee_count is not None:
            employee_count = parse_employee_count(employee_count, required=False)
        parent_code = None
        if new_parent is not None and new_parent.code != self.parent_code:
            if self.parent_code is None:
                raise TreeViolation("the deployment's root cannot move under another union")
            new_parent.require_active("new parent organisation")
            if new_parent.code == self.code or self.code in new_parent_ancestors:
                raise TreeViolation(f"moving {self.code} under {new_parent.code} makes a cycle")
            if new_parent.rank <= self.rank:
                raise TreeViolation(
                    f"a {self.level} union cannot sit under a {new_parent.level} union"
                )
            parent_code = new_parent.code
        if name is None and employee_count is None and parent_code is None:
            raise InvalidValue("body", "name, parent_code or employee_count must change")
        self._changed(
            effective_on=effective_on,
            name=name,
            parent_code=parent_code,
            employee_count=employee_count,
        )

    @event("Changed", topic="ledger:Organisation.Changed")
    def _changed(
        self,
        effective_on: datetime.date,
        name: str | None,
        parent_code: str | None,
        employee_count: int | None,
    ) -> None:
        if name is not None:
            self.name = name
        if employee_count is not None:
            self.employee_count = employee_count
        if parent_code is not None:
            self.parent_history.append((effective_on, parent_code))

    def dissolve(self, dissolved_on: datetime.date) -> None:
        """撤销: refused while the union has members or active children."""
        self.require_active()
        if self.member_count:
            raise OrganizationInUse(f"{self.code} still has {self.member_count} members")
        if self.active_children:
            raise OrganizationInUse(
                f"{self.code} still has {len(self.active_children)} active child unions"
            )
        if dissolved_on < self.founded_on:
            raise InvalidValue("dissolved_on", "a union cannot be dissolved before its founding")
        self._dissolved(dissolved_on=dissolved_on)

    @event("Dissolved", topic="ledger:Organisation.Dissolved")
    def _dissolved(self, dissolved_on: datetime.date) -> None:
        self.status = "dissolved"
        self.dissolved_on = dissolved_on

    def attach_child(self, child_code: str) -> None:
        if child_code in self.active_children:
            raise AlreadyExists(f"{child_code} is already a child of {self.code}")
        self._child_attached(child_code=child_code)

    @event("ChildAttached", topic="ledger:Organisation.ChildAttached")
    def _child_attached(self, child_code: str) -> None:
        self.active_children.append(child_code)

    def detach_child(self, child_code: str) -> None:
        if child_code not in self.active_children:
            raise TreeViolation(f"{child_code} is not a child of {self.code}")
        self._child_detached(child_code=child_code)

    @event("ChildDetached", topic="ledger:Organisation.ChildDetached")
    def _child_detached(self, child_code: str) -> None:
        self.active_children.remove(child_code)

    def check_admission(self, effective_on: datetime.date) -> None:
        """Refuses a member for this union's roll on that day, before anything is recorded."""
        self.require_active()
        if not self.is_base:
            raise InvalidValue("organization_code", "members belong to a base or joint base union")
        if effective_on < self.founded_on:
            raise InvalidValue("effective_on", f"{self.code} was founded on {self.founded_on}")

    def admit_member(self, member_id: str, effective_on: datetime.date) -> None:
        """Puts a member on this union's roll (join, rejoin, accepted transfer)."""
        self.check_admission(effective_on)
        self._member_admitted(member_id=member_id, effective_on=effective_on)

    @event("MemberAdmitted", topic="ledger:Organisation.MemberAdmitted")
    def _member_admitted(self, member_id: str, effective_on: datetime.date) -> None:
        self.member_count += 1

    def admit_members(self, admissions: list[tuple[str, datetime.date]]) -> None:
        """Puts many members on this union's roll in one event (a roster import's chunk):
        (member id, effective date) each, every member at most once."""
        if not admissions:
            raise InvalidValue("rows", "no member to admit")
        by_day: dict[datetime.date, list[str]] = {}
        for member_id, effective_on in admissions:
            by_day.setdefault(effective_on, []).append(member_id)
        for effective_on in by_day:
            self.check_admission(effective_on)
        if len({member_id for member_id, _ in admissions}) != len(admissions):
            raise AlreadyExists("a member cannot be admitted twice at once")
        self._members_admitted(
            admitted=[{"effective_on": day, "member_ids": ids} for day, ids in by_day.items()]
        )

    @event("MembersAdmitted", topic="ledger:Organisation.MembersAdmitted")
    def _members_admitted(self, admitted: list[dict[str, Any]]) -> None:
        # admitted: [{"effective_on": date, "member_ids": [str, ...]}, ...], one per day.
        self.member_count += sum(len(group["member_ids"]) for group in admitted)

    def release_member(self, member_id: str, effective_on: datetime.date) -> None:
        self._member_released(member_id=member_id, effective_on=effective_on)

    @event("MemberReleased", topic="ledger:Organisation.MemberReleased")
    def _member_released(self, member_id: str, effective_on: datetime.date) -> None:
        self.member_count -= 1


class Admissions:
    """Members one command puts on one union's roll, recorded together by record() as one
    MembersAdmitted event instead of a MemberAdmitted event each. Each admission is checked
    when it is made, so that a refused one is refused at once and leaves nothing behind."""

    def __init__(self, organization: Organization) -> None:
        self.organization = organization
        self.admitted: list[tuple[str, datetime.date]] = []
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self.admitted)

    def admit(self, member_id: str, effective_on: datetime.date) -> None:
        self.organization.check_admission(effective_on)
        if member_id in self._ids:
            raise AlreadyExists("this person is already admitted by this command")
        self._ids.add(member_id)
        self.admitted.append((member_id, effective_on))

    def record(self) -> None:
        """The one event for every admission so far (none if there was none)."""
        if self.admitted:
            self.organization.admit_members(self.admitted)
            self.admitted = []
            self._ids = set()
