"""Loads a synthetic deployment through the ledger's own commands, many at a time.

The deployment is the demo plan (scripts/demo_data.py): its organisation tree, its people and
their wages. Commands go to the one Ledger of the process from a pool of threads, so that the
group committer (service/group_commit.py) writes many of them per transaction, as it does for
concurrent HTTP clients. Every event is real: validated, encrypted, and readable by the
projection. The year of business is the month-end routine of domain.md: per base union one
levy per employer (拨缴经费) and one dues receipt (会费), then an activities expense (职工活动支出).
"""

from __future__ import annotations

import datetime
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from domain.errors import DomainError
from domain.funds import dues_for_wage
from domain.levy import levy_due
from domain.money import Money
from scripts.demo_data import DEMO_YEAR, DemoPlan, OrgPlan, Person
from service.application import Ledger
from service.commands import (
    AdoptLevyPolicy,
    Command,
    FoundOrganization,
    JoinMember,
    RecordDues,
    RecordExpense,
    RecordLevy,
)

ACTOR = "bench:load"
LEVY_DAY, DUES_DAY, EXPENSE_DAY = 15, 25, 28
EXPENSE_SHARE_PERCENT = 30  # of the month's dues: a base union spends part of what it took in
MAX_REJECTED_EXAMPLES = 5
IN_FLIGHT_COMMANDS = 5_000


class LoadTooSlow(RuntimeError):
    """The deployment could not be loaded within the run's time bound."""


@dataclass
class LoadReport:
    """What was loaded, how fast, and what the ledger refused (with examples)."""

    commands: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    rejected_examples: list[str] = field(default_factory=list)
    skipped: int = 0  # commands not attempted because the time bound had passed
    seconds: float = 0.0
    events: int = 0
    organizations: int = 0
    members: int = 0

    def as_dict(self) -> dict[str, Any]:
        total = sum(self.commands.values())
        return {
            "organisations": self.organizations,
            "members": self.members,
            "commands": dict(self.commands),
            "rejected": dict(self.rejected),
            "rejected_examples": self.rejected_examples,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "commands_per_s": round(total / self.seconds, 1) if self.seconds else None,
            "events_per_s": round(self.events / self.seconds, 1) if self.seconds else None,
        }


class DeploymentLoader:
    def __init__(
        self,
        ledger: Ledger,
        plan: DemoPlan,
        *,
        months: int,
        threads: int,
        max_s: float,
        on_step: Callable[[int], None] | None = None,
    ) -> None:
        if not 1 <= months <= 12:
            raise ValueError("months is 1 to 12")
        self.ledger = ledger
        self.plan = plan
        self.months = months
        self.threads = threads
        self.max_s = max_s
        self.deadline = float("inf")
        self.on_step = on_step or (lambda steps: None)
        self.report = LoadReport()
        self.orgs = {o.code: o for o in plan.organizations}
        self.members_by_org: dict[str, list[Person]] = defaultdict(list)
        for person in plan.people:
            # Unions founded during the demo year are not loaded: their members neither.
            if person.organization_code in self.orgs:
                self.members_by_org[person.organization_code].append(person)

    @property
    def steps_total(self) -> int:
        bases = sum(1 for o in self.plan.organizations if o.is_base)
        members = sum(len(v) for v in self.members_by_org.values())
        return len(self.plan.organizations) + members + 3 * bases * self.months

    def load(self) -> LoadReport:
        head = self.ledger.head_position()
        started = time.perf_counter()
        self.deadline = started + self.max_s
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="bench-load") as pool:
            for policy in self.plan.policies:
                self._do("levy_policy", AdoptLevyPolicy, policy)
            for level in self._levels():
                self._many(
                    pool,
                    "found_organization",
                    FoundOrganization,
                    (self._found_args(o) for o in level),
                )
            self._many(
                pool,
                "join_member",
                JoinMember,
                (self._join_args(p) for ps in self.members_by_org.values() for p in ps),
            )
            for month in range(1, self.months + 1):
                self._month(pool, month)
        self.report.seconds = time.perf_counter() - started
        if self.report.skipped:
            raise LoadTooSlow(
                f"loading {self.plan.size} at scale {self.plan.scale} took longer than "
                f"{self.max_s:.0f}s ({sum(self.report.commands.values()):,} commands done, "
                f"{self.report.skipped:,} not attempted)"
            )
        self.report.events = self.ledger.head_position() - head
        self.report.organizations = self.report.commands["found_organization"]
        self.report.members = self.report.commands["join_member"]
        return self.report

    # --- the month-end routine -----------------------------------------------------------------

    def _month(self, pool: ThreadPoolExecutor, month: int) -> None:
        bases = [o for o in self.plan.organizations if o.is_base]
        levies = [args for o in bases for args in self._levy_args(o, month)]
        self._many(pool, "levy", RecordLevy, levies)
        dues = [args for o in bases if (args := self._dues_args(o, month))]
        self._many(pool, "dues", RecordDues, dues)
        expenses = [args for o in bases if (args := self._expense_args(o, month))]
        self._many(pool, "expense", RecordExpense, expenses)

    def _county_of(self, org: OrgPlan) -> str:
        code: str | None = org.code
        while code is not None:
            if self.orgs[code].level == "county":
                return code
            code = self.orgs[code].parent_code
        raise ValueError(f"{org.code} has no county above it")

    def _levy_args(self, org: OrgPlan, month: int) -> list[dict[str, Any]]:
        receiver = org.code if org.channel == "employer" else self._county_of(org)
        return [
            {
                "receiving_organization_code": receiver,
                "base_organization_code": org.code,
                "employer_code": employer.code,
                "period": f"{DEMO_YEAR}-{month:02d}",
                "payroll_total": str(Money(employer.payroll_fen)),
                "amount": str(levy_due(Money(employer.payroll_fen))),
                "channel": org.channel,
                "received_on": datetime.date(DEMO_YEAR, month, LEVY_DAY).isoformat(),
            }
            for employer in org.employers
        ]

    def _dues_fen(self, org: OrgPlan) -> int:
        return sum(dues_for_wage(Money(p.wage_fen)).fen for p in self.members_by_org[org.code])

    def _dues_args(self, org: OrgPlan, month: int) -> dict[str, Any] | None:
        amount_fen = self._dues_fen(org)
        if amount_fen == 0:
            return None
        return {
            "organization_code": org.code,
            "period": f"{DEMO_YEAR}-{month:02d}",
            "amount": str(Money(amount_fen)),
            "received_on": datetime.date(DEMO_YEAR, month, DUES_DAY).isoformat(),
        }

    def _expense_args(self, org: OrgPlan, month: int) -> dict[str, Any] | None:
        amount_fen = self._dues_fen(org) * EXPENSE_SHARE_PERCENT // 100
        if amount_fen == 0:
            return None
        return {
            "organization_code": org.code,
            "account_code": "501",
            "amount": str(Money(amount_fen)),
            "earmarked": False,
            "description": f"{DEMO_YEAR}年{month}月职工活动",
            "paid_on": datetime.date(DEMO_YEAR, month, EXPENSE_DAY).isoformat(),
        }

    # --- organisations and members -------------------------------------------------------------

    def _levels(self) -> list[list[OrgPlan]]:
        """The tree level by level: a union is founded only after its parent."""
        depth: dict[str, int] = {}
        for org in self.plan.organizations:  # the plan lists every parent before its children
            depth[org.code] = 0 if org.parent_code is None else depth[org.parent_code] + 1
        levels: dict[int, list[OrgPlan]] = defaultdict(list)
        for org in self.plan.organizations:
            levels[depth[org.code]].append(org)
        return [levels[d] for d in sorted(levels)]

    @staticmethod
    def _found_args(org: OrgPlan) -> dict[str, Any]:
        return {
            "code": org.code,
            "name": org.name,
            "level": org.level,
            "parent_code": org.parent_code,
            "region_code": org.region_code,
            "founded_on": org.founded_on.isoformat(),
            "employer_code": org.employer_code,
            "employee_count": org.employee_count,
        }

    @staticmethod
    def _join_args(person: Person) -> dict[str, Any]:
        return {
            "id_number": person.id_number,
            "name": person.name,
            "organization_code": person.organization_code,
            "joined_on": person.joined_on.isoformat(),
            "mobile": person.mobile,
            "migrant_worker": person.migrant_worker,
            "new_employment_form": person.new_employment_form,
        }

    # --- running commands ----------------------------------------------------------------------

    def _do(self, label: str, command: type[Command], fields: dict[str, Any]) -> None:
        if time.perf_counter() > self.deadline:
            self.report.skipped += 1
            return
        try:
            self.ledger.execute(command(**fields), actor=ACTOR)
        except DomainError as exc:
            # Counted and reported, never hidden: a refused command is not in the figures.
            self.report.rejected[label] += 1
            if len(self.report.rejected_examples) < MAX_REJECTED_EXAMPLES:
                self.report.rejected_examples.append(f"{label}: {exc.message}")
            return
        self.report.commands[label] += 1

    def _many(
        self,
        pool: ThreadPoolExecutor,
        label: str,
        command: type[Command],
        all_kwargs: Iterable[dict[str, Any]],
    ) -> None:
        """Runs the commands on the pool, a bounded number in flight (a city has a million)."""
        pending = iter(all_kwargs)
        while chunk := list(itertools.islice(pending, IN_FLIGHT_COMMANDS)):
            futures = [pool.submit(self._do, label, command, kwargs) for kwargs in chunk]
            for future in futures:
                future.result()
            self.on_step(len(chunk))
