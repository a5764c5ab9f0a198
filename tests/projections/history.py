"""Random but valid histories for the read-side tests: the small tree of tests/service/scenario.py,
a pool of people, and a stream of membership and fund commands. A command the domain refuses
is simply skipped (it stores nothing), so every drawn history is a history the ledger allows.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from domain.errors import DomainError
from projections.read_models.models import ReadModels
from service.application import Ledger
from service.commands import (
    AcceptTransfer,
    CancelTransfer,
    ChangeOrganization,
    CloseHardshipFile,
    ClosePeriod,
    CorrectMember,
    ExitMember,
    JoinMember,
    OpenHardshipFile,
    PaySubsidy,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RecordRemittance,
    RegisterModelWorker,
    ReinstateMember,
    ReopenPeriod,
    RetainMember,
    ReverseVoucher,
    ReviewHardshipFile,
    RevokeModelWorker,
    StartTransfer,
)
from tests.conftest import Backend
from tests.service.scenario import Tree, found_tree, person

PEOPLE = 10
# Hypothesis over random histories: each example opens a store of its own (function-scoped
# fixtures only hand out the factory), and some examples write for a while.
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
START = datetime.date(2023, 1, 1)
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴婷"]


class HistoryWriter:
    """Issues random commands against a ledger, remembering what it needs to make valid ones."""

    def __init__(self, ledger: Ledger, rng: random.Random) -> None:
        self.ledger = ledger
        self.rng = rng
        self.tree: Tree = found_tree(ledger)
        self.bases = [self.tree.base_a, self.tree.base_b, self.tree.base_c]
        self.day = START
        self.members: dict[int, str] = {}  # person -> member id
        self.pending: dict[str, str] = {}  # member id -> transfer id
        self.vouchers: list[str] = []
        self.applied = 0
        # An independent model of the rolls, as now known: member id -> [(day, status, org)].
        self.timeline: dict[str, list[tuple[datetime.date, str, str]]] = {}
        self.moves: list[tuple[datetime.date, str]] = []  # base_b's new parent by date
        self.files: list[str] = []  # hardship files opened
        self.workers: list[str] = []  # model-worker records
        self.closed: dict[str, tuple[int, int]] = {}  # union -> last closed (year, month)

    def _date(self) -> str:
        self.day += datetime.timedelta(days=self.rng.randint(0, 20))
        return self.day.isoformat()

    def _try(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = command(*args, **kwargs)
        except DomainError:
            return None
        self.applied += 1
        return result.body

    def _record(self, day: str, view: dict[str, Any] | None) -> None:
        if view is not None:
            self.timeline.setdefault(view["member_id"], []).append(
                (datetime.date.fromisoformat(day), view["status"], view["organization_code"])
            )

    def expected_roll(self, day: datetime.date) -> dict[str, tuple[str, str]]:
        """member id -> (union, status) on the rolls as of day."""
        result = {}
        for member, entries in self.timeline.items():
            current = [e for e in entries if e[0] <= day]
            if current and current[-1][1] != "left":
                result[member] = (current[-1][2], current[-1][1])
        return result

    def change_days(self) -> set[datetime.date]:
        return {e[0] for entries in self.timeline.values() for e in entries}

    def step(self) -> None:
        choice = self.rng.choice(self.COMMANDS)
        choice(self)

    def steps(self, n: int) -> HistoryWriter:
        """n random commands; the writer, to chain from its construction."""
        for _ in range(n):
            self.step()
        return self

    def join(self) -> None:
        n = self.rng.randrange(PEOPLE)
        day = self._date()
        body = self._try(
            self.ledger.execute,
            JoinMember(
                id_number=person(n),
                name=self.rng.choice(NAMES),
                organization_code=self.rng.choice(self.bases),
                joined_on=day,
                mobile=self.rng.choice([None, "13800138000"]),
                migrant_worker=self.rng.random() < 0.3,
                new_employment_form=self.rng.random() < 0.2,
            ),
        )
        if body is not None:
            self.members[n] = body["member_id"]
            self._record(day, body)

    def _member(self) -> str | None:
        return self.members[self.rng.choice(sorted(self.members))] if self.members else None

    def transfer(self) -> None:
        # Mostly settle a pending transfer: otherwise few are ever accepted or cancelled.
        if self.pending and self.rng.random() < 0.7:
            member = self.rng.choice(sorted(self.pending))
        else:
            member = self._member()
        if member is None:
            return
        if member in self.pending:
            transfer_id = self.pending.pop(member)
            if self.rng.random() < 0.6:
                day = self._date()
                self._record(
                    day,
                    self._try(
                        self.ledger.execute,
                        AcceptTransfer(member_id=member, transfer_id=transfer_id, effective_on=day),
                    ),
                )
            elif (
                self._try(
                    self.ledger.execute, CancelTransfer(member_id=member, transfer_id=transfer_id)
                )
                is not None
            ):
                # As now known the transfer never happened: the member stayed active.
                day, _, org = self.timeline[member][-1]
                self.timeline[member][-1] = (day, "active", org)
            return
        day = self._date()
        body = self._try(
            self.ledger.execute,
            StartTransfer(
                member_id=member,
                to_organization_code=self.rng.choice(self.bases),
                effective_on=day,
                reason_code=1,
            ),
        )
        if body is not None:
            self.pending[member] = body["transfer_id"]
            self._record(day, body["member"])

    def retain_or_reinstate(self) -> None:
        member = self._member()
        if member is None:
            return
        day = self._date()
        view = self._try(
            self.ledger.execute,
            RetainMember(member_id=member, effective_on=day, reason_code=self.rng.choice([2, 3])),
        )
        if view is None:
            view = self._try(
                self.ledger.execute, ReinstateMember(member_id=member, effective_on=day)
            )
        self._record(day, view)

    def exit(self) -> None:
        member = self._member()
        if member is not None:
            day = self._date()
            self._record(
                day,
                self._try(
                    self.ledger.execute,
                    ExitMember(
                        member_id=member,
                        effective_on=day,
                        change_code=(change := self.rng.choice([5, 6])),
                        reason_code=6 if change == 5 else 5,  # the reason that fits
                    ),
                ),
            )

    def correct(self) -> None:
        member = self._member()
        if member is not None:
            changes = self.rng.choice(
                [
                    {"name": self.rng.choice(NAMES)},
                    {"mobile": "13900139000"},
                    {"migrant_worker": True},
                    {"new_employment_form": False, "mobile": None},
                ]
            )
            self._try(
                self.ledger.execute, CorrectMember(member_id=member, changes=changes, note="更正")
            )

    def _voucher(self, body: dict[str, Any] | None) -> None:
        if body is not None:
            self.vouchers.append(body["voucher_id"])

    def dues(self) -> None:
        self._voucher(
            self._try(
                self.ledger.execute,
                RecordDues(
                    organization_code=self.rng.choice(self.bases),
                    period=f"{self.day:%Y-%m}",
                    amount=f"{self.rng.randint(1, 5000)}.{self.rng.randint(0, 99):02d}",
                    received_on=self._date(),
                ),
            )
        )

    def levy(self) -> None:
        base_index = self.rng.randrange(3)
        base = self.bases[base_index]
        employer = [self.tree.employer_a, self.tree.employer_b, self.tree.employer_c][base_index]
        payroll_fen = self.rng.randint(100, 10_000_000) * 50  # 2% of it is whole fen
        tax = self.rng.random() < 0.5
        receiver = self.tree.county if tax else base
        self._voucher(
            self._try(
                self.ledger.execute,
                RecordLevy(
                    receiving_organization_code=receiver,
                    base_organization_code=base,
                    employer_code=employer,
                    period=f"{self.day:%Y-%m}",
                    payroll_total=f"{payroll_fen // 100}.{payroll_fen % 100:02d}",
                    amount=f"{payroll_fen // 5000}.{payroll_fen // 50 % 100:02d}",
                    channel="tax" if tax else "employer",
                    received_on=self._date(),
                ),
            )
        )

    def remit(self) -> None:
        base = self.rng.choice(self.bases)
        parent = self.tree.township if base == self.tree.base_c else self.tree.county
        if self.rng.random() < 0.5:
            self._voucher(
                self._try(
                    self.ledger.execute,
                    RecordRemittance(
                        from_organization_code=base,
                        to_organization_code=parent,
                        kind="upward",
                        amount=f"{self.rng.randint(1, 300)}.00",
                        period=f"{self.day:%Y-%m}",
                        paid_on=self._date(),
                    ),
                )
            )
        else:
            self._voucher(
                self._try(
                    self.ledger.execute,
                    RecordRemittance(
                        from_organization_code=self.tree.county,
                        to_organization_code=self.rng.choice([self.tree.base_a, self.tree.base_b]),
                        kind="pass_down",
                        amount=f"{self.rng.randint(1, 300)}.00",
                        period=f"{self.day:%Y-%m}",
                        paid_on=self._date(),
                    ),
                )
            )

    def spend(self) -> None:
        payer = self.rng.choice([*self.bases, self.tree.county])
        if self.rng.random() < 0.5:
            self._voucher(
                self._try(
                    self.ledger.execute,
                    RecordExpense(
                        organization_code=payer,
                        account_code=self.rng.choice(["501", "503", "50404", "504", "510"]),
                        amount=f"{self.rng.randint(1, 200)}.50",
                        earmarked=self.rng.random() < 0.5,
                        description="活动经费",
                        paid_on=self._date(),
                    ),
                )
            )
        elif payer == self.tree.county:
            self._voucher(
                self._try(
                    self.ledger.execute,
                    PaySubsidy(
                        payer_organization_code=payer,
                        recipient={"organization_code": self.rng.choice(self.bases)},
                        programme="general",
                        amount=f"{self.rng.randint(1, 100)}.00",
                        earmarked=self.rng.random() < 0.5,
                        approval_ref="批-1",
                        paid_on=self._date(),
                    ),
                )
            )
        else:
            member = self._member()
            if member is not None:
                self._voucher(
                    self._try(
                        self.ledger.execute,
                        PaySubsidy(
                            payer_organization_code=payer,
                            recipient={"member_id": member},
                            programme=self.rng.choice(["hardship", "school", "model_worker"]),
                            amount=f"{self.rng.randint(1, 100)}.00",
                            earmarked=True,
                            approval_ref="批-2",
                            paid_on=self._date(),
                        ),
                    )
                )

    def reverse(self) -> None:
        if self.vouchers:
            self._try(
                self.ledger.execute,
                ReverseVoucher(
                    voucher_id=self.rng.choice(self.vouchers),
                    effective_on=self._date(),
                    reason="录入错误",
                ),
            )

    def reorganise(self) -> None:
        if self.rng.random() < 0.5:
            self._try(
                self.ledger.execute,
                ChangeOrganization(
                    code=self.rng.choice(self.bases),
                    effective_on=self._date(),
                    employee_count=self.rng.randint(10, 500),
                ),
            )
        else:
            # base_b moves between the county and the township: the tree over time.
            parent = self.rng.choice([self.tree.county, self.tree.township])
            day = self._date()
            if (
                self._try(
                    self.ledger.execute,
                    ChangeOrganization(code=self.tree.base_b, effective_on=day, parent_code=parent),
                )
                is not None
            ):
                self.moves.append((datetime.date.fromisoformat(day), parent))

    def close(self) -> None:
        """月结 of a union's months up to a random one before the current day's month: a
        December closed posts the year-end close (年终结账) on 31 December."""
        org = self.rng.choice([*self.bases, self.tree.county, self.tree.township])
        year, month = self.closed.get(org, (START.year, START.month - 1))
        months_open = (self.day.year - year) * 12 + self.day.month - month - 1
        for _ in range(max(0, months_open - self.rng.randint(0, 2))):
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            period = f"{year:04d}-{month:02d}"
            body = self._try(self.ledger.execute, ClosePeriod(organization_code=org, period=period))
            if body is None:
                return
            self.closed[org] = (year, month)
            if body.get("year_end_voucher_id"):
                self.vouchers.append(body["year_end_voucher_id"])

    def reopen(self) -> None:
        """反结账 of a union's last closed month: reopening December reverses its year-end
        close on 31 December."""
        if not self.closed:
            return
        # A closed December first: its reopening is the year-end close's reversal.
        decembers = sorted(org for org, (_, month) in self.closed.items() if month == 12)
        org = self.rng.choice(decembers or sorted(self.closed))
        year, month = self.closed[org]
        reopened = self._try(
            self.ledger.execute,
            ReopenPeriod(organization_code=org, period=f"{year:04d}-{month:02d}", reason="更正"),
        )
        if reopened is not None:
            self.closed[org] = (year - 1, 12) if month == 1 else (year, month - 1)

    def registers(self) -> None:
        """困难职工档案 and 劳模名册: open, review or close a file; register or revoke."""
        draw = self.rng.random()
        member = self._member()
        if draw < 0.35 and member is not None:
            body = self._try(
                self.ledger.execute,
                OpenHardshipFile(
                    member_id=member,
                    category=self.rng.choice(["deep", "relative", "sudden"]),
                    causes=self.rng.sample(["illness", "education", "unemployment"], 2),
                    household_size=self.rng.randint(1, 6),
                    monthly_income_per_head=f"{self.rng.randint(200, 1500)}.00",
                    opened_on=self._date(),
                ),
            )
            if body is not None:
                self.files.append(body["file_id"])
        elif draw < 0.55 and self.files:
            self._try(
                self.ledger.execute,
                ReviewHardshipFile(
                    file_id=self.rng.choice(self.files),
                    reviewed_on=self._date(),
                    category=self.rng.choice(["deep", "relative"]),
                    household_size=self.rng.randint(1, 6),
                    monthly_income_per_head=f"{self.rng.randint(200, 1500)}.00",
                ),
            )
        elif draw < 0.7 and self.files:
            self._try(
                self.ledger.execute,
                CloseHardshipFile(
                    file_id=self.rng.choice(self.files), closed_on=self._date(), reason="脱困"
                ),
            )
        elif draw < 0.9:
            n = self.rng.randrange(PEOPLE)
            body = self._try(
                self.ledger.execute,
                RegisterModelWorker(
                    id_number=person(n),
                    name=NAMES[n],
                    honour=self.rng.choice(["县级劳动模范", "市级劳动模范"]),
                    level=self.rng.choice(["county", "city"]),
                    awarded_year=self.rng.randint(2015, 2023),
                    organization_code=self.tree.county,
                ),
            )
            if body is not None:
                self.workers.append(body["model_worker_id"])
        elif self.workers:
            self._try(
                self.ledger.execute,
                RevokeModelWorker(
                    model_worker_id=self.rng.choice(self.workers),
                    revoked_on=self._date(),
                    reason="撤销",
                ),
            )

    def parent_of_base_b(self, day: datetime.date) -> str:
        parent = self.tree.county
        for moved_on, code in self.moves:
            if moved_on <= day:
                parent = code
        return parent

    COMMANDS = (
        join,
        join,
        join,
        transfer,
        transfer,
        retain_or_reinstate,
        exit,
        correct,
        dues,
        levy,
        levy,
        remit,
        spend,
        spend,
        reverse,
        reorganise,
        registers,
        registers,
        close,
        close,
        reopen,
    )


@contextmanager
def random_history(
    kind: str, tmp: Path, seed: int
) -> Iterator[tuple[Backend, ReadModels, HistoryWriter, random.Random]]:
    """A fresh store of this kind with its read models and a history writer drawing from
    random.Random(seed) (handed out too, for the test's own draws); closed afterwards."""
    backend = Backend(kind, tmp)
    try:
        ledger = backend.open()
        rng = random.Random(seed)
        rm = ReadModels(ledger)
        try:
            yield backend, rm, HistoryWriter(ledger, rng), rng
        finally:
            rm.close()
    finally:
        backend.close()
