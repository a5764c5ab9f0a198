"""Organisation commands (建会, 变更, 撤销) of the ledger application."""

from __future__ import annotations

import datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from domain.errors import (
    NotFound,
    TreeViolation,
)
from domain.funds import (
    levy_postings,
)
from domain.identity import CreditCode, has_credit_code_shape, parse_region_code
from domain.levy import (
    share_levy,
)
from domain.organizations import Deployment, Organization, parse_level
from domain.period import Month, parse_date
from domain.reserves import FoundingReserve
from service.idempotency import IdempotencyKey
from service.results import organization_view
from service.unit_of_work import MAX_TREE_DEPTH, CommandResult, UnitOfWork


class OrganizationCommands:
    """Command methods mixed into Ledger (service/application.py), which supplies _run."""

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
            if uow.get(Organization.id_for(credit_code.value)) is not None:
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
            org = Organization.found(
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
            return organization_view(org)

        return self._run("found_organization", request, idempotency, actor, decide)

    def _release_founding_reserve(self, uow: UnitOfWork, org: Organization, employer: str) -> None:
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
            return organization_view(org)

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
            return organization_view(org)

        return self._run("dissolve_organization", request, idempotency, actor, decide)

    def get_organization(self, code: str) -> dict[str, Any]:
        return organization_view(UnitOfWork(self).org(code))

    def organization_is_cached(self, code: str) -> bool:
        """Whether the organisation is in the process's cache. Organisations are never
        deleted, so one that is there exists."""
        cache = self.repository.cache
        if cache is None or not has_credit_code_shape(code):
            return False
        try:
            return cache.get(Organization.id_for(code)) is not None
        except KeyError:
            return False

    def organization_lineage(self, code: str, day: datetime.date) -> list[str]:
        """The organisation's code and its ancestors' as the tree stands on `day`, nearest
        first (NotFound if it does not exist)."""
        lineage: list[str] = []
        current: str | None = code
        while current is not None:
            if len(lineage) > MAX_TREE_DEPTH:
                raise TreeViolation(f"the tree above {code} is deeper than {MAX_TREE_DEPTH}")
            org = self._read_organization(current)
            lineage.append(org.code)
            current = org.parent_on(day)
        return lineage

    def _read_organization(self, code: str) -> Organization:
        """An organisation to read, not to change: the cache's own object, without the copy
        a command gets (UnitOfWork.org), which costs most on the busiest unions."""
        try:
            if not has_credit_code_shape(code):
                raise AggregateNotFoundError(code)
            return self.repository.get(Organization.id_for(code), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            raise NotFound(f"organisation {str(code)[:40]} not found") from None

    def require_organization(self, code: str) -> None:
        """NotFound unless the organisation exists (no store access if it is cached)."""
        if not (isinstance(code, str) and self.organization_is_cached(code)):
            UnitOfWork(self).org(code)
