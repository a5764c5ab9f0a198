"""Loads a demo plan through the ledger's own command methods, as the API would, month by month.

Every write is a Ledger command with actor "cli:demo": the same validation, the same events,
the same books as a clerk's request. Commands that do not depend on each other's outcome are
sent concurrently (see CONCURRENT_COMMANDS); everything else goes one at a time, in order.
Amounts that depend on the books (what a union owes, what it can spend) are read back from
the Book aggregates, so the demo never asks for a payout the rules would refuse.
"""

from __future__ import annotations

import datetime
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from rich.progress import Progress

from domain.accounts import BANK, OTHER_PAYABLE, PAYABLE_DOWN, PAYABLE_UP
from domain.funds import dues_for_wage
from domain.levy import level_rank, levy_due
from domain.money import Money
from domain.period import Month
from scripts.demo_data import (
    DEMO_YEAR,
    HARDSHIP_CATEGORIES,
    HARDSHIP_CAUSES,
    HARDSHIP_CLOSE_REASONS,
    HARDSHIP_SHARE,
    MODEL_WORKER_HONOURS,
    MODEL_WORKER_LEVELS,
    MODEL_WORKER_SHARE,
    DemoPlan,
    Employer,
    OrgPlan,
    Person,
    Story,
)
from scripts.demo_names import EXPENSES
from service.application import Ledger
from service.commands import (
    AcceptTransfer,
    AdoptLevyPolicy,
    CancelTransfer,
    ChangeOrganization,
    CloseHardshipFile,
    ClosePeriod,
    Command,
    CorrectMember,
    ExitMember,
    FoundOrganization,
    JoinMember,
    OpenHardshipFile,
    PaySubsidy,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RecordRemittance,
    RegisterModelWorker,
    ReinstateMember,
    RetainMember,
    ReverseVoucher,
    ReviewHardshipFile,
    RevokeModelWorker,
    StartTransfer,
)
from service.imports import join_unions
from service.unit_of_work import CommandResult

ACTOR = "cli:demo"
LEVY_DAY, DUES_DAY, REMITTANCE_DAY = 15, 25, 28
QUARTER_ENDS = (3, 6, 9, 12)
LAST_CLOSED_MONTH = 12  # closing December is the year-end close (年终结账)
# Independent commands (a roster of joins, a month's levies) are sent this many at a time, as
# a burst of HTTP requests would be: the ledger's group commit then saves them in one write.
CONCURRENT_COMMANDS = 32
# Commands _many keeps submitted at once (a few batches of the writer's, so it never waits).
MANY_IN_FLIGHT = 8 * CONCURRENT_COMMANDS


@dataclass
class LoadStats:
    """What the load did and how fast: commands by kind, and seconds per phase."""

    commands: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)  # by phase
    phase_commands: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    @property
    def total_commands(self) -> int:
        return sum(self.commands.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


@dataclass(slots=True)
class _Roll:
    """The loader's own record of a member, mirroring what it told the ledger."""

    member_id: str
    organization_code: str
    status: str = "active"
    transfer_id: str | None = None


class DemoLoader:
    def __init__(self, ledger: Ledger, plan: DemoPlan, progress: Progress | None = None) -> None:
        self.ledger = ledger
        self.plan = plan
        self.progress = progress
        self.rng = random.Random(f"union-ledger-demo-loader:{plan.size}:{plan.seed}")
        self.stats = LoadStats()
        self.orgs: dict[str, OrgPlan] = {o.code: o for o in plan.organizations}
        self.parent: dict[str, str | None] = {o.code: o.parent_code for o in plan.organizations}
        self.roll: dict[int, _Roll] = {}
        self.approval_serial = 0
        # The registers, as the loader opened them: person index -> its hardship file
        # (file_id, category, opened_on, last dated, closed_on) and its model-worker record.
        # Drawn from their own generator, so that the rest of the load stays as it was.
        self.register_rng = random.Random(f"union-ledger-demo-registers:{plan.size}:{plan.seed}")
        self.files: dict[int, dict[str, Any]] = {}
        self.workers: dict[int, dict[str, Any]] = {}
        self.pool = ThreadPoolExecutor(CONCURRENT_COMMANDS, thread_name_prefix="demo")

    # --- plumbing ------------------------------------------------------------------------

    def _do(self, label: str, command: Command) -> CommandResult:
        result = self.ledger.execute(command, actor=ACTOR)
        self.stats.commands[label] += 1
        return result

    def _many(
        self,
        label: str,
        command: type[Command],
        calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
        task: Any = None,
    ) -> list[CommandResult]:
        """Sends independent commands of one kind concurrently (calls: each one's fields, as
        ((), {field: value})); results in the order of calls.

        The first failure is raised once the commands in flight have finished; none is sent
        after it (the load stops there, as it would at a failed command sent alone)."""

        def send(call: tuple[tuple[Any, ...], dict[str, Any]]) -> CommandResult:
            _, fields = call
            return self.ledger.execute(command(**fields), actor=ACTOR)

        # A window of commands in flight, not all of them at once: a future (and its work
        # item) per command of a whole roster held hundreds of megabytes at province scale.
        results: list[CommandResult] = []
        in_flight: deque[Future[CommandResult]] = deque()
        waiting = iter(calls)
        failure: BaseException | None = None
        for call in islice(waiting, MANY_IN_FLIGHT):
            in_flight.append(self.pool.submit(send, call))
        while in_flight:
            try:
                results.append(in_flight.popleft().result())
            except BaseException as exc:
                failure = failure or exc
            self._advance(task)
            if failure is None:
                for call in islice(waiting, 1):
                    in_flight.append(self.pool.submit(send, call))
        if failure is not None:
            raise failure
        self.stats.commands[label] += len(results)
        return results

    def _phase(self, name: str, total: int | None):
        if self.progress is None:
            return None
        return self.progress.add_task(name, total=total)

    def _advance(self, task: Any, steps: int = 1) -> None:
        if task is not None and self.progress is not None:
            self.progress.advance(task, steps)

    def free_funds(self, code: str) -> Money:
        """Bank deposits less what the union owes others: what it may spend."""
        book = self.ledger.get_book(code)
        if book is None:
            return Money(0)
        owed = sum(
            m.fen
            for acct in (PAYABLE_UP, PAYABLE_DOWN, OTHER_PAYABLE)
            for m in book.owed(acct).values()
        )
        return Money(book.balance(BANK).fen - owed)

    def county_of(self, code: str) -> str:
        """The county-level union above a union: it receives levies collected by tax."""
        current: str | None = code
        while current is not None:
            if self.orgs[current].level == "county":
                return current
            current = self.parent[current]
        raise ValueError(f"{code} has no county union above it")

    # --- the whole load ----------------------------------------------------------------------

    def run(self) -> LoadStats:
        try:
            self._timed("organisations", self.found_tree)
            self._timed("members", self.join_pre_year_members)
            self._timed("registers", self.open_registers)
            self._timed("year", self.run_year)
        finally:
            self.pool.shutdown()
        return self.stats

    def _timed(self, phase: str, action: Callable[[], None]) -> None:
        started, commands = time.perf_counter(), self.stats.total_commands
        action()
        self.stats.seconds[phase] = time.perf_counter() - started
        self.stats.phase_commands[phase] = self.stats.total_commands - commands

    def run_year(self) -> None:
        months = self._phase(f"{DEMO_YEAR} 月度业务 months", 12)
        for month in range(1, 13):
            self.run_month(month)
            self._advance(months)

    def found_tree(self) -> None:
        task = self._phase("组织 organisations", len(self.plan.organizations))
        for policy in self.plan.policies:
            self._do("levy_policy", AdoptLevyPolicy(**policy))
        for org in self.plan.organizations:
            self.found(org)
            self._advance(task)

    def found(self, org: OrgPlan) -> None:
        self._do(
            "found_organization",
            FoundOrganization(
                code=org.code,
                name=org.name,
                level=org.level,
                parent_code=org.parent_code,
                region_code=org.region_code,
                founded_on=org.founded_on.isoformat(),
                employer_code=org.employer_code,
                employee_count=org.employee_count,
            ),
        )

    def join_pre_year_members(self) -> None:
        """The members who joined before the year, through the roster import's bulk path
        (service/imports.py join_unions: the same checks and events as JoinMembers), many
        unions' rosters to a transaction. Every row must be accepted, as every join was."""
        task = self._phase(
            f"会员 members joined before {DEMO_YEAR}", len(self.plan.pre_year_members)
        )
        by_org: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for i in self.plan.pre_year_members:
            person = self.plan.people[i]
            request = self.join_request(person, person.organization_code, person.joined_on)
            by_org.setdefault(request.pop("organization_code"), []).append((i, request))

        unions = list(by_org.items())
        for (code, _), outcomes in zip(
            unions, join_unions(self.ledger, unions, actor=ACTOR), strict=True
        ):
            for outcome in outcomes:
                if "member_id" not in outcome:
                    raise RuntimeError(f"the demo's member {outcome['row']} was refused: {outcome}")
                self.roll[outcome["row"]] = _Roll(outcome["member_id"], code)
            self._advance(task, len(outcomes))
            self.stats.commands["join_member (bulk)"] += len(outcomes)

    @staticmethod
    def join_request(person: Person, org_code: str, on: datetime.date) -> dict[str, Any]:
        return dict(
            id_number=person.id_number,
            name=person.name,
            organization_code=org_code,
            joined_on=on.isoformat(),
            mobile=person.mobile,
            migrant_worker=person.migrant_worker,
            new_employment_form=person.new_employment_form,
        )

    def join(self, index: int, person: Person, org_code: str, on: datetime.date) -> None:
        result = self._do("join_member", JoinMember(**self.join_request(person, org_code, on)))
        self.roll[index] = _Roll(result.body["member_id"], org_code)

    # --- one month ---------------------------------------------------------------------------

    def run_month(self, month: int) -> None:
        """Everything dated in the month, in date order, then the month-end closes."""
        agenda: list[tuple[datetime.date, int, Callable[[], None]]] = []

        def at(day: datetime.date, action: Callable[[], None]) -> None:
            agenda.append((day, len(agenda), action))

        # Organisation changes first: a union founded today takes members today.
        for change in self.plan.org_changes:
            if change.on.month == month:
                at(change.on, lambda c=change: self.change_organization(c))
        for story in self.plan.stories:
            if story.on.month == month:
                at(story.on, lambda s=story: self.tell(s))
        at(datetime.date(DEMO_YEAR, month, LEVY_DAY), lambda: self.levies(month))
        at(datetime.date(DEMO_YEAR, month, DUES_DAY), lambda: self.dues(month))
        if month in QUARTER_ENDS:
            at(datetime.date(DEMO_YEAR, month, REMITTANCE_DAY), lambda: self.remittances(month))
        at(datetime.date(DEMO_YEAR, month, 10), lambda: self.review_files(month))
        if month == 10:
            at(datetime.date(DEMO_YEAR, month, 12), self.close_files)
        if 2 <= month <= 11:
            at(datetime.date(DEMO_YEAR, month, 18), lambda: self.open_sudden_files(month))
        if month == 7:
            at(datetime.date(DEMO_YEAR, month, 1), self.revoke_a_model_worker)
        at(datetime.date(DEMO_YEAR, month, 26), lambda: self.expenses(month))
        at(datetime.date(DEMO_YEAR, month, 27), lambda: self.subsidies(month))
        if month == 5:
            at(datetime.date(DEMO_YEAR, month, 20), self.correct_by_reversal)
        task = self._phase(f"  {DEMO_YEAR}-{month:02d}", len(agenda))
        for _, _, action in sorted(agenda, key=lambda item: (item[0], item[1])):
            action()
            self._advance(task)
        if month <= LAST_CLOSED_MONTH:
            self.close_month(month)
        if task is not None and self.progress is not None:
            self.progress.remove_task(task)

    def active_codes(self, on: datetime.date) -> list[str]:
        return [code for code, org in self.orgs.items() if org.founded_on <= on]

    # --- membership --------------------------------------------------------------------------

    def tell(self, story: Story) -> None:
        people, on = self.plan.people, story.on.isoformat()
        if story.kind == "join":
            person = people[story.person]
            self.join(story.person, person, person.organization_code, story.on)
            return
        entry = self.roll[story.person]
        if story.kind == "transfer_start":
            result = self._do(
                "start_transfer",
                StartTransfer(
                    member_id=entry.member_id,
                    to_organization_code=story.organization_code,
                    effective_on=on,
                    reason_code=story.code,
                ),
            )
            entry.transfer_id, entry.status = result.body["transfer_id"], "transfer_pending"
        elif story.kind == "transfer_accept":
            self._do(
                "accept_transfer",
                AcceptTransfer(
                    member_id=entry.member_id, transfer_id=entry.transfer_id, effective_on=on
                ),
            )
            entry.organization_code, entry.status = story.organization_code, "active"
        elif story.kind == "transfer_cancel":
            self._do(
                "cancel_transfer",
                CancelTransfer(member_id=entry.member_id, transfer_id=entry.transfer_id),
            )
            entry.status = "active"
        elif story.kind == "retain":
            self._do(
                "retain_member",
                RetainMember(member_id=entry.member_id, effective_on=on, reason_code=story.code),
            )
            entry.status = "retained"
        elif story.kind == "reinstate":
            self._do(
                "reinstate_member", ReinstateMember(member_id=entry.member_id, effective_on=on)
            )
            entry.status = "active"
        elif story.kind == "exit":
            self._do(
                "exit_member",
                ExitMember(
                    member_id=entry.member_id,
                    effective_on=on,
                    change_code=story.code,
                    reason_code=story.reason,
                ),
            )
            entry.status = "left"
        elif story.kind == "rejoin":
            assert story.organization_code is not None
            self.join(story.person, people[story.person], story.organization_code, story.on)
        elif story.kind == "correct":
            mobile = "1" + self.rng.choice("3456789") + f"{self.rng.randrange(10**9):09d}"
            self._do(
                "correct_member",
                CorrectMember(
                    member_id=entry.member_id,
                    changes={"mobile": mobile},
                    note="会员本人申请变更手机号码",
                ),
            )
        else:
            raise ValueError(f"unknown story {story.kind}")

    def change_organization(self, change: Any) -> None:
        on = change.on.isoformat()
        if change.kind == "found":
            org = self.plan.in_year_organizations[change.organization_code]
            self.found(org)
            self.orgs[org.code] = org
            self.parent[org.code] = org.parent_code
        elif change.kind == "rename":
            self._do(
                "change_organization",
                ChangeOrganization(
                    code=change.organization_code, effective_on=on, name=change.value
                ),
            )
        elif change.kind == "move":
            self._do(
                "change_organization",
                ChangeOrganization(
                    code=change.organization_code, effective_on=on, parent_code=change.value
                ),
            )
            self.parent[change.organization_code] = change.value

    # --- money in ----------------------------------------------------------------------------

    def payroll(self, employer: Employer, month: int) -> Money:
        """The month's payroll: steady, with the year-end bonus (年终奖) in December."""
        factor = self.rng.uniform(0.97, 1.03) * (1.8 if month == 12 else 1.0)
        return Money(round(employer.payroll_fen * factor / 100) * 100)

    def levies(self, month: int) -> None:
        """拨缴经费 of every employer for the month, by the employer or by the tax bureau."""
        received = datetime.date(DEMO_YEAR, month, LEVY_DAY)
        founded = set(self.active_codes(received))
        # Receipts only (no funds are checked): the reserves go together, then the levies.
        reserves = []
        for employer, holder in self.plan.reserve_employers:
            union = next(
                (
                    o
                    for o in self.plan.in_year_organizations.values()
                    if o.employer_code == employer.code
                ),
                None,
            )
            if union is None or union.code not in founded:
                reserves.append(
                    ((), self.levy_request(holder, None, employer, month, received, "tax"))
                )
        self._many("founding_reserve", RecordLevy, reserves)
        calls = []
        for code in sorted(founded):
            org = self.orgs[code]
            if not org.is_base:
                continue
            receiver = code if org.channel == "employer" else self.county_of(code)
            for employer in org.employers:
                calls.append(
                    ((), self.levy_request(receiver, code, employer, month, received, org.channel))
                )
        self._many("levy", RecordLevy, calls)

    def levy_request(
        self,
        receiver: str,
        base: str | None,
        employer: Employer,
        month: int,
        received: datetime.date,
        channel: str,
    ) -> dict[str, Any]:
        payroll = self.payroll(employer, month)
        return dict(
            receiving_organization_code=receiver,
            base_organization_code=base,
            employer_code=employer.code,
            period=f"{DEMO_YEAR}-{month:02d}",
            payroll_total=str(payroll),
            amount=str(levy_due(payroll)),
            channel=channel,
            received_on=received.isoformat(),
        )

    def dues(self, month: int) -> None:
        """会费 of every base union: 0.5% of each paying member's wage; some send the list."""
        received = datetime.date(DEMO_YEAR, month, DUES_DAY)
        payers: dict[str, list[int]] = {}
        for index, entry in self.roll.items():
            if entry.status in ("active", "transfer_pending"):
                payers.setdefault(entry.organization_code, []).append(index)
        calls = []
        for code in sorted(payers):
            org = self.orgs[code]
            lines = []
            for index in payers[code]:
                wage = Money(self.plan.people[index].wage_fen)
                lines.append(
                    {
                        "member_id": self.roll[index].member_id,
                        "wage": str(wage),
                        "amount": str(dues_for_wage(wage)),
                    }
                )
            amount = Money(sum(Money.parse(line["amount"]).fen for line in lines))
            calls.append(
                (
                    (),
                    dict(
                        organization_code=code,
                        period=f"{DEMO_YEAR}-{month:02d}",
                        amount=str(amount),
                        received_on=received.isoformat(),
                        members=lines if org.dues_with_members else None,
                    ),
                )
            )
        self._many("dues", RecordDues, calls)

    # --- money along the tree ------------------------------------------------------------------

    def remittances(self, month: int) -> None:
        """Quarter end: every union remits what it owes upward (上解), bottom up; then what
        is owed downward is passed down (回拨), top down."""
        paid_on = datetime.date(DEMO_YEAR, month, REMITTANCE_DAY)
        by_level: dict[int, list[str]] = {}
        for code in self.active_codes(paid_on):
            by_level.setdefault(level_rank(self.orgs[code].level), []).append(code)
        # One level at a time: what a union passes on includes what it has just received.
        for rank in sorted(by_level):
            calls = []
            for code in sorted(c for c in by_level[rank] if self.parent[c] is not None):
                book = self.ledger.get_book(code)
                owed = sum(m.fen for m in book.owed(PAYABLE_UP).values()) if book else 0
                if owed <= 0:
                    continue
                # Most pay in full; a few pay part and carry the rest into the next quarter.
                amount = owed if self.rng.random() < 0.9 else owed * 7 // 10
                amount = min(amount, book.balance(BANK).fen)
                if amount > 0:
                    calls.append(
                        self.remittance(code, self.parent[code], "upward", amount, month, paid_on)
                    )
            self._many("remittance", RecordRemittance, calls)
        for rank in sorted(by_level, reverse=True):
            calls = []
            for code in sorted(by_level[rank]):
                book = self.ledger.get_book(code)
                if book is None or self.orgs[code].is_base:
                    continue
                by_child: Counter = Counter()
                for counterparty, money in book.owed(PAYABLE_DOWN).items():
                    child = self.child_towards(code, counterparty)
                    if child is not None:
                        by_child[child] += money.fen
                for child, amount in sorted(by_child.items()):
                    calls.append(self.remittance(code, child, "pass_down", amount, month, paid_on))
            self._many("remittance", RecordRemittance, calls)

    def child_towards(self, ancestor: str, code: str) -> str | None:
        """The direct child of ancestor on the way down to code."""
        current: str | None = code
        while current is not None and self.parent.get(current) != ancestor:
            current = self.parent.get(current)
        return current

    @staticmethod
    def remittance(
        payer: str,
        receiver: str | None,
        kind: str,
        amount_fen: int,
        month: int,
        paid_on: datetime.date,
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        assert receiver is not None
        return (), dict(
            from_organization_code=payer,
            to_organization_code=receiver,
            kind=kind,
            amount=str(Money(amount_fen)),
            period=f"{DEMO_YEAR}-{month:02d}",
            paid_on=paid_on.isoformat(),
        )

    # --- money out ---------------------------------------------------------------------------

    def expenses(self, month: int) -> None:
        """支出: activities, services, worker's homes; never more than free funds allow."""
        paid_on = datetime.date(DEMO_YEAR, month, 26)
        # Each union's expense touches its own books only: all are sent together, as the
        # month's bursts of requests would be (one at a time, each waited for its commit).
        calls = []
        for code in self.active_codes(paid_on):
            org = self.orgs[code]
            if org.is_base and self.rng.random() > 0.3:
                continue
            account, text = self.rng.choice(EXPENSES)
            free = self.free_funds(code).fen
            amount = min(
                free * self.rng.randint(10, 40) // 100,
                self.rng.randint(2_000, 60_000) * 100 * (1 if org.is_base else 20),
            )
            amount -= amount % 100
            if amount < 50_00:
                self.stats.skipped["expense"] += 1
                continue
            calls.append(
                (
                    (),
                    dict(
                        organization_code=code,
                        account_code=account,
                        amount=str(Money(amount)),
                        earmarked=False,
                        description=f"{DEMO_YEAR}年{month}月{text}",
                        paid_on=paid_on.isoformat(),
                    ),
                )
            )
        self._many("expense", RecordExpense, calls)

    def approval_ref(self, payer: str) -> str:
        self.approval_serial += 1
        return f"{self.orgs[payer].name[:6]}帮〔{DEMO_YEAR}〕{self.approval_serial}号"

    def members_under(self, codes: list[str]) -> dict[str, list[int]]:
        """The people on the roll (not left) of each of these unions or a union below it, in
        index order. One pass over the roll with each union's chain above it walked once: a
        pass per union cost the number of counties times the number of people."""
        wanted = set(codes)
        found: dict[str, list[int]] = {code: [] for code in codes}
        chains: dict[str, list[str]] = {}
        for index, entry in sorted(self.roll.items()):
            if entry.status == "left":
                continue
            code = entry.organization_code
            chain = chains.get(code)
            if chain is None:
                chain, current = [], code
                while current is not None:
                    if current in wanted:
                        chain.append(current)
                    current = self.parent.get(current)
                chains[code] = chain
            for above in chain:
                found[above].append(index)
        return found

    def subsidies(self, month: int) -> None:
        """补助: to people (帮扶, 助学, 劳模, 托育, 慰问) and to lower unions."""
        paid_on = datetime.date(DEMO_YEAR, month, 27)
        programmes = {
            1: ("hardship", 0.003, (1_000, 5_000), True),
            4: ("model_worker", 0.0003, (1_000, 3_000), False),
            8: ("school", 0.001, (2_000, 5_000), True),
            9: ("childcare", 0.0005, (500, 1_500), False),
            11: ("hardship", 0.003, (1_000, 3_000), True),  # 冬季送温暖
        }
        counties = [c for c in self.active_codes(paid_on) if self.orgs[c].level == "county"]
        # A county's subsidies touch its own books (and a union's, paid to one): each county's
        # budget is read before any is sent, so those of the programmes and of the unions
        # go together, as bursts of requests; the condolences below read the base unions'
        # funds one payment at a time.
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        if month in programmes:
            programme, share, (low, high), earmarked = programmes[month]
            under = self.members_under(counties)
            for county in counties:
                people = under[county]
                count = min(len(people), max(1, round(len(people) * share)))
                if programme in ("hardship", "model_worker"):
                    # Paid against the registers: every deep file and some of the others at
                    # Spring Festival (送温暖); every model worker on the register in April.
                    chosen = self.register_recipients(programme, people, paid_on)
                else:
                    chosen = self.rng.sample(people, count)
                budget = self.free_funds(county).fen * 6 // 10
                for index in chosen:
                    amount = self.rng.randint(low // 100, high // 100) * 100_00
                    if amount > budget:
                        self.stats.skipped["subsidy"] += 1
                        continue
                    budget -= amount
                    calls.append(
                        self.subsidy_call(
                            county,
                            {"member_id": self.roll[index].member_id},
                            programme,
                            amount,
                            earmarked,
                            paid_on,
                        )
                    )
        if month in (3, 6):
            for county in counties:
                children = [c for c in self.active_codes(paid_on) if self.parent[c] == county]
                if month == 6:
                    children = [c for c in children if self.orgs[c].is_base]
                    children = self.rng.sample(children, max(1, len(children) // 20))
                budget = self.free_funds(county).fen // 2
                for child in children:
                    amount = self.rng.randint(100, 800) * 100_00
                    if amount > budget:
                        self.stats.skipped["subsidy"] += 1
                        continue
                    budget -= amount
                    calls.append(
                        self.subsidy_call(
                            county,
                            {"organization_code": child},
                            "general",
                            amount,
                            month == 6,
                            paid_on,
                        )
                    )
        self._many("subsidy", PaySubsidy, calls)
        # 慰问: a few base unions visit members in hospital or bereaved.
        for _, entry in sorted(self.roll.items())[:: max(1, len(self.roll) // 40)]:
            if entry.status == "left" or self.rng.random() > 0.2:
                continue
            amount = self.rng.randint(2, 10) * 100_00
            if self.free_funds(entry.organization_code).fen >= amount:
                _, request = self.subsidy_call(
                    entry.organization_code,
                    {"member_id": entry.member_id},
                    "condolence",
                    amount,
                    False,
                    paid_on,
                )
                self._do("subsidy", PaySubsidy(**request))

    # --- the registers (困难职工档案, 劳模名册) ------------------------------------------------

    def _weighted(self, weights: dict[str, int]) -> str:
        return self.register_rng.choices(list(weights), weights=list(weights.values()))[0]

    def _file_request(self, index: int, category: str, on: datetime.date) -> dict[str, Any]:
        rng = self.register_rng
        causes = {self._weighted(HARDSHIP_CAUSES) for _ in range(rng.choice((1, 1, 2)))}
        if category == "sudden" and not causes & {"illness", "accident"}:
            causes = {"accident"}
        income = rng.randint(25, 90 if category == "relative" else 55) * 10_00
        return dict(
            member_id=self.roll[index].member_id,
            category=category,
            causes=sorted(causes),
            household_size=rng.randint(2, 6),
            monthly_income_per_head=str(Money(income)),
            opened_on=on.isoformat(),
        )

    def _record_file(self, index: int, request: dict[str, Any], result: CommandResult) -> None:
        day = datetime.date.fromisoformat(request["opened_on"])
        self.files[index] = {
            "file_id": result.body["file_id"],
            "category": request["category"],
            "opened_on": day,
            "last_dated": day,
            "closed_on": None,
        }

    def open_registers(self) -> None:
        """建档 and 劳模登记 before the year: files opened over the last years for a few
        percent of the members, and the model workers living in each county."""
        rng = self.register_rng
        on_roll = sorted(self.roll)
        chosen = [i for i in on_roll if rng.random() < HARDSHIP_SHARE]
        task = self._phase("档案 hardship files and model workers", len(chosen))
        calls, indices = [], []
        for index in chosen:
            person = self.plan.people[index]
            first = max(person.joined_on, datetime.date(DEMO_YEAR - 4, 1, 1))
            last = datetime.date(DEMO_YEAR - 1, 12, 31)
            if first > last:
                continue
            on = first + datetime.timedelta(days=rng.randrange((last - first).days + 1))
            calls.append(((), self._file_request(index, self._weighted(HARDSHIP_CATEGORIES), on)))
            indices.append(index)
        results = self._many("open_hardship_file", OpenHardshipFile, calls, task)
        for index, (_, request), result in zip(indices, calls, results, strict=True):
            self._record_file(index, request, result)
        for index in on_roll:
            if rng.random() >= MODEL_WORKER_SHARE:
                continue
            level = self._weighted(MODEL_WORKER_LEVELS)
            person = self.plan.people[index]
            result = self._do(
                "register_model_worker",
                RegisterModelWorker(
                    id_number=person.id_number,
                    name=person.name,
                    honour=rng.choice(MODEL_WORKER_HONOURS[level]),
                    level=level,
                    awarded_year=rng.randint(max(2000, person.joined_on.year), DEMO_YEAR - 1),
                    organization_code=self.county_of(self.roll[index].organization_code),
                ),
            )
            self.workers[index] = {"id": result.body["model_worker_id"], "revoked_on": None}

    def register_recipients(
        self, programme: str, people: list[int], paid_on: datetime.date
    ) -> list[int]:
        if programme == "model_worker":
            return [
                i
                for i in people
                if i in self.workers
                and (
                    self.workers[i]["revoked_on"] is None or self.workers[i]["revoked_on"] > paid_on
                )
            ]
        on_file = [
            i
            for i in people
            if i in self.files
            and self.files[i]["opened_on"] <= paid_on
            and self.files[i]["closed_on"] is None
        ]
        return [
            i
            for i in on_file
            if self.files[i]["category"] == "deep" or self.register_rng.random() < 0.3
        ]

    def review_files(self, month: int) -> None:
        """年度复核 of the files due this month; about one in eight is left overdue. Each
        review touches its own file: they are sent together."""
        rng = self.register_rng
        calls = []
        for _, file in sorted(self.files.items()):
            last = file["last_dated"]
            if file["closed_on"] is not None or last.year >= DEMO_YEAR or last.month != month:
                continue
            if rng.random() < 0.125:
                continue
            reviewed_on = datetime.date(DEMO_YEAR, month, rng.randint(1, 9))
            category = file["category"]
            if category == "deep" and rng.random() < 0.2:
                category = "relative"  # better off, still on file
            elif category != "deep" and rng.random() < 0.04:
                category = "deep"
            request = dict(
                file_id=file["file_id"],
                reviewed_on=reviewed_on.isoformat(),
                category=category,
                household_size=rng.randint(2, 6),
                monthly_income_per_head=str(Money(rng.randint(30, 95) * 10_00)),
            )
            calls.append(((), request))
            file["category"], file["last_dated"] = category, reviewed_on
        self._many("review_hardship_file", ReviewHardshipFile, calls)

    def close_files(self) -> None:
        """脱困: about one open file in eight is closed in October."""
        rng = self.register_rng
        closed_on = datetime.date(DEMO_YEAR, 10, 12)
        calls = []
        for _, file in sorted(self.files.items()):
            if file["closed_on"] is not None or file["category"] == "deep":
                continue
            if rng.random() >= 0.125:
                continue
            request = dict(
                file_id=file["file_id"],
                closed_on=closed_on.isoformat(),
                reason=rng.choice(HARDSHIP_CLOSE_REASONS),
            )
            calls.append(((), request))
            file["closed_on"] = closed_on
        self._many("close_hardship_file", CloseHardshipFile, calls)

    def open_sudden_files(self, month: int) -> None:
        """意外致困 during the year: a few new files a month."""
        rng = self.register_rng
        on = datetime.date(DEMO_YEAR, month, 18)
        calls, indices = [], []
        for index, entry in sorted(self.roll.items()):
            if entry.status != "active" or index in self.files:
                continue
            if rng.random() >= HARDSHIP_SHARE / 120:
                continue
            calls.append(((), self._file_request(index, "sudden", on)))
            indices.append(index)
        results = self._many("open_hardship_file", OpenHardshipFile, calls)
        for index, (_, request), result in zip(indices, calls, results, strict=True):
            self._record_file(index, request, result)

    def revoke_a_model_worker(self) -> None:
        """撤销: one model worker's honours are withdrawn in July."""
        if not self.workers:
            return
        index = self.register_rng.choice(sorted(self.workers))
        revoked_on = datetime.date(DEMO_YEAR, 7, 1)
        self._do(
            "revoke_model_worker",
            RevokeModelWorker(
                model_worker_id=self.workers[index]["id"],
                revoked_on=revoked_on.isoformat(),
                reason="因违法违纪，依规撤销劳动模范称号",
            ),
        )
        self.workers[index]["revoked_on"] = revoked_on

    def subsidy_call(
        self,
        payer: str,
        recipient: dict[str, str],
        programme: str,
        amount_fen: int,
        earmarked: bool,
        paid_on: datetime.date,
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """A PaySubsidy request's fields (its approval reference numbered now, in order)."""
        return (), dict(
            payer_organization_code=payer,
            recipient=recipient,
            programme=programme,
            amount=str(Money(amount_fen)),
            earmarked=earmarked,
            approval_ref=self.approval_ref(payer),
            paid_on=paid_on.isoformat(),
        )

    def correct_by_reversal(self) -> None:
        """红字冲销: an expense keyed in with a wrong amount is reversed and posted again."""
        root, paid_on = self.plan.root_code, datetime.date(DEMO_YEAR, 5, 20)
        free = self.free_funds(root).fen
        right = min(free // 10, 38_600_00)
        if right < 1_000:
            self.stats.skipped["reversal"] += 1
            return
        wrong = min(right * 10, free)
        text = f"{DEMO_YEAR}年劳模疗休养"
        voucher = self._do(
            "expense",
            RecordExpense(
                organization_code=root,
                account_code="503",
                amount=str(Money(wrong)),
                earmarked=False,
                description=text,
                paid_on=paid_on.isoformat(),
            ),
        )
        self._do(
            "reversal",
            ReverseVoucher(
                voucher_id=voucher.body["voucher_id"],
                effective_on=(paid_on + datetime.timedelta(days=2)).isoformat(),
                reason="金额录入错误，红字冲销后重新入账",
            ),
        )
        self._do(
            "expense",
            RecordExpense(
                organization_code=root,
                account_code="503",
                amount=str(Money(right)),
                earmarked=False,
                description=text,
                paid_on=(paid_on + datetime.timedelta(days=2)).isoformat(),
            ),
        )

    def close_month(self, month: int) -> None:
        """月结 of every union's books."""
        calls = [
            ((), {"organization_code": code, "period": f"{DEMO_YEAR}-{month:02d}"})
            for code in self.active_codes(Month(DEMO_YEAR, month).last_day)
        ]
        self._many("close_period", ClosePeriod, calls)
