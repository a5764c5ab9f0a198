"""Organization commands: 建会 (found), 变更 (change: rename, move, employee count), 撤销
(dissolve)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import TreeViolation
from domain.funds import levy_postings
from domain.identity import CreditCode, parse_region_code
from domain.levy import share_levy
from domain.organizations import Deployment, Organization, parse_level
from domain.period import Month, parse_date
from domain.reserves import FoundingReserve
from service.commands.base import Command
from service.results import organization_view
from service.unit_of_work import UnitOfWork


@dataclass(frozen=True, kw_only=True, eq=False)
class FoundOrganization(Command):
    """建会: founds a union under an active parent, or the deployment's one root."""

    NAME = "found_organization"
    code: str
    name: str
    level: str
    parent_code: str | None
    region_code: str
    founded_on: Any
    employer_code: str | None = None
    employee_count: int | None = None

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        credit_code = CreditCode.parse(self.code, field="code")
        org_level = parse_level(self.level)
        region = parse_region_code(self.region_code)
        day = parse_date(self.founded_on, field="founded_on")
        employer = (
            CreditCode.parse(self.employer_code, field="employer_code")
            if self.employer_code
            else None
        )
        if uow.get(Organization.id_for(credit_code.value)) is not None:
            raise TreeViolation(f"an organisation with code {credit_code.value} exists")
        parent = None
        if self.parent_code is None:
            if uow.get(Deployment.ID) is not None:
                raise TreeViolation("the deployment has a root already; parent_code is required")
            uow.add(Deployment(root_code=credit_code.value))
        else:
            parent = uow.org(self.parent_code, field="parent_code")
        org = Organization.found(
            code=credit_code,
            name=self.name,
            level=org_level,
            parent=parent,
            region_code=region,
            founded_on=day,
            employer_code=employer,
            employee_count=self.employee_count,
        )
        uow.add(org)
        if employer is not None:
            reserve = uow.get(FoundingReserve.id_for(employer.value))
            if reserve is None:
                reserve = FoundingReserve(employer_code=employer.value)
                uow.add(reserve)
            if org.is_base and org.level == "base":
                reserve.union_founded(org.code)  # one active base union per employer
            release_founding_reserve(uow, org, employer.value)
        return organization_view(org)


def release_founding_reserve(uow: UnitOfWork, org: Organization, employer: str) -> None:
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
        period_start = Month.parse(entry["period"]).first_day
        policy = uow.policies().in_force(org.region_code, period_start)
        shares = share_levy(entry["amount"], policy.shares, path)
        postings = levy_postings(
            holder, ranks[holder], shares, from_account="215", from_counterparty=employer
        )
        # Dated on the founding day, or, if the holder has closed that month, on the first
        # day it has open; the voucher names the founding date either way.
        day = org.founded_on
        closed = uow.book(holder).last_closed
        if closed is not None and Month.of(day) <= closed:
            day = closed.next().first_day
        voucher = uow.post(
            "founding_reserve_release",
            day,
            postings,
            {
                "employer_code": employer,
                "base_organization_code": org.code,
                "period": entry["period"],
                "held_voucher_id": held_id,
                "founded_on": org.founded_on.isoformat(),
            },
        )
        reserve.release(
            held_voucher_id=held_id, release_voucher_id=str(voucher.id), base_code=org.code
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class ChangeOrganization(Command):
    """变更: renames the union, changes its employee count, or moves it under another parent."""

    NAME = "change_organization"
    code: str
    effective_on: Any
    name: str | None = None
    parent_code: str | None = None
    employee_count: int | None = None

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.code)
        day = parse_date(self.effective_on, field="effective_on")
        new_parent = None
        ancestors: list[str] = []
        if self.parent_code is not None and self.parent_code != org.parent_code:
            new_parent = uow.org(self.parent_code, field="parent_code")
            ancestors = [a.code for a in uow.ancestors(new_parent)]
        old_parent_code = org.parent_code
        org.change(
            effective_on=day,
            name=self.name,
            employee_count=self.employee_count,
            new_parent=new_parent,
            new_parent_ancestors=ancestors,
        )
        if new_parent is not None and old_parent_code is not None:
            uow.org(old_parent_code).detach_child(org.code)
            new_parent.attach_child(org.code)
        return organization_view(org)


@dataclass(frozen=True, kw_only=True, eq=False)
class DissolveOrganization(Command):
    """撤销: refused while the union has members or active children."""

    NAME = "dissolve_organization"
    code: str
    dissolved_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.code)
        org.dissolve(parse_date(self.dissolved_on, field="dissolved_on"))
        if org.parent_code is not None:
            uow.org(org.parent_code).detach_child(org.code)
        if org.employer_code is not None:
            reserve = uow.get(FoundingReserve.id_for(org.employer_code))
            if reserve is not None:
                reserve.union_dissolved(org.code)  # the employer may found a union again
        return organization_view(org)
