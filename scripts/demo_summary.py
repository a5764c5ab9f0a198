"""What a store holds, in the counts a union's statistics report (统计概要), from the aggregates.

Organisations come from walking the tree down from the deployment's root; members and vouchers
from replaying their own events out of the event store, in pages; the root's money from its
Book. Only counts and amounts are shown: no personal data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import Notification
from rich.table import Table

from domain.accounts import BANK, OTHER_PAYABLE, PAYABLE_DOWN, PAYABLE_UP
from domain.errors import NotFound
from domain.levy import ORG_LEVELS
from domain.members import LEFT, Member
from domain.money import Money
from domain.organizations import Deployment, Organization
from domain.registers import CATEGORIES, LEVELS, HardshipFile, ModelWorker
from domain.vouchers import Voucher
from service.application import Ledger

PAGE_SIZE = 2000
LEVEL_NAMES = {
    "national": "全国总工会 national",
    "province": "省总工会 province",
    "city": "市总工会 city",
    "county": "县级总工会 county",
    "township": "乡镇/街道工会 township",
    "base": "基层工会 base",
    "joint_base": "联合基层工会 joint base",
}
STATUS_NAMES = {
    "active": "在册 active",
    "retained": "保留会籍 retained",
    "transfer_pending": "转接中 transfer pending",
    "left": "已离会 left",
}
KIND_NAMES = {
    "dues": "会费 dues",
    "levy": "拨缴经费 levy",
    "founding_reserve": "建会筹备金 founding reserve",
    "founding_reserve_release": "筹备金分成 reserve release",
    "remittance": "上解/回拨 remittance",
    "subsidy": "补助 subsidy",
    "expense": "支出 expense",
    "reversal": "红字冲销 reversal",
    "year_end": "年终结账 year-end close",
}


@dataclass
class Summary:
    root_code: str
    root_name: str
    events: int
    organizations: Counter = field(default_factory=Counter)
    members: Counter = field(default_factory=Counter)
    women: int = 0
    migrant_workers: int = 0
    new_employment_form: int = 0
    vouchers: Counter = field(default_factory=Counter)
    reversed_vouchers: int = 0
    bank: Money = field(default_factory=Money.zero)
    owed_up: dict[str, Money] = field(default_factory=dict)
    owed_down: Money = field(default_factory=Money.zero)
    owed_down_counterparties: int = 0
    founding_reserves: Money = field(default_factory=Money.zero)
    # The registers: hardship files by status and (open ones) by category, yearly reviews;
    # model workers by level (not revoked) and revoked.
    hardship_files: Counter = field(default_factory=Counter)
    hardship_categories: Counter = field(default_factory=Counter)
    hardship_reviews: int = 0
    model_workers: Counter = field(default_factory=Counter)
    model_workers_revoked: int = 0

    @property
    def on_roll(self) -> int:
        return sum(n for status, n in self.members.items() if status != LEFT)


def deployment_root(ledger: Ledger) -> str | None:
    """The code of the deployment's root organisation, or None for an empty store."""
    try:
        return ledger.repository.get(Deployment.ID).root_code
    except AggregateNotFoundError:
        return None


def _event_topics(*classes: type) -> list[str]:
    return [
        obj.TOPIC
        for cls in classes
        for obj in vars(cls).values()
        if isinstance(obj, type) and issubclass(obj, CanMutateAggregate) and hasattr(obj, "TOPIC")
    ]


def _notifications(ledger: Ledger, topics: list[str]) -> Iterator[Notification]:
    start = 1
    while True:
        page = ledger.recorder.select_notifications(start, PAGE_SIZE, topics=topics)
        if not page:
            return
        yield from page
        start = page[-1].id + 1


def summarize(ledger: Ledger, advance: Callable[[int], None] | None = None) -> Summary:
    """Counts over the whole deployment. advance(n) reports n more events read."""
    root_code = deployment_root(ledger)
    if root_code is None:
        raise NotFound("the store has no deployment yet (run `ledger demo` to load one)")
    root = ledger.repository.get(Organization.id_for(root_code))
    summary = Summary(root_code, root.name, ledger.head_position())
    _count_organizations(ledger, root, summary)
    members: dict[UUID, Any] = {}
    registers: dict[UUID, Any] = {}
    last_position = 0
    topics = _event_topics(Member, Voucher, HardshipFile, ModelWorker)
    for note in _notifications(ledger, topics):
        event = ledger.mapper.to_domain_event(note)
        if isinstance(event, HardshipFile.Event | ModelWorker.Event):
            registers[event.originator_id] = event.mutate(registers.get(event.originator_id))
        elif isinstance(event, Member.Event):
            # The aggregate's own mutators rebuild each member: the same code as a repository
            # get, with one read per page of events instead of one per member.
            members[event.originator_id] = event.mutate(members.get(event.originator_id))
        elif isinstance(event, Voucher.Posted):
            summary.vouchers[event.kind] += 1
        elif isinstance(event, Voucher.Reversed):
            summary.reversed_vouchers += 1
        if advance is not None:
            advance(note.id - last_position)
        last_position = note.id
    for member in members.values():
        summary.members[member.status] += 1
        if member.status == LEFT:
            continue
        summary.women += member.identity.sex == "female"
        summary.migrant_workers += member.migrant_worker
        summary.new_employment_form += member.new_employment_form
    for record in registers.values():
        if isinstance(record, HardshipFile):
            summary.hardship_files[record.status] += 1
            summary.hardship_reviews += record.reviews
            if record.is_open:
                summary.hardship_categories[record.category] += 1
        elif record.is_revoked:
            summary.model_workers_revoked += 1
        else:
            summary.model_workers[record.level] += 1
    book = ledger.get_book(root_code)
    if book is not None:
        summary.bank = book.balance(BANK)
        summary.owed_up = dict(sorted(book.owed(PAYABLE_UP).items()))
        owed_down = book.owed(PAYABLE_DOWN)
        summary.owed_down = Money(sum(m.fen for m in owed_down.values()))
        summary.owed_down_counterparties = len(owed_down)
        summary.founding_reserves = Money(sum(m.fen for m in book.owed(OTHER_PAYABLE).values()))
    return summary


def _count_organizations(ledger: Ledger, root: Organization, summary: Summary) -> None:
    """Active organisations by level, walking down the tree from the root."""
    pending = [root]
    while pending:
        org = pending.pop()
        summary.organizations[org.level] += 1
        pending.extend(
            ledger.repository.get(Organization.id_for(code)) for code in org.active_children
        )


def yuan(money: Money) -> str:
    """1,234,567.89: thousands separated for reading; the exact fen always shown."""
    sign = "-" if money.fen < 0 else ""
    whole, fen = divmod(abs(money.fen), 100)
    return f"{sign}{whole:,}.{fen:02d}"


def summary_tables(summary: Summary) -> list[Table]:
    orgs = Table(title=f"{summary.root_name} {summary.root_code}: 组织 organisations")
    orgs.add_column("level 层级")
    orgs.add_column("count 数量", justify="right")
    for level in ORG_LEVELS:
        if summary.organizations[level]:
            orgs.add_row(LEVEL_NAMES[level], f"{summary.organizations[level]:,}")
    orgs.add_row("total 合计", f"{sum(summary.organizations.values()):,}", style="bold")

    people = Table(title="会员 members")
    people.add_column("")
    people.add_column("count 人数", justify="right")
    for status, label in STATUS_NAMES.items():
        people.add_row(label, f"{summary.members[status]:,}")
    people.add_row("会员总数 on the roll", f"{summary.on_roll:,}", style="bold")
    people.add_row("女会员 women", f"{summary.women:,}")
    people.add_row("农民工 migrant workers", f"{summary.migrant_workers:,}")
    people.add_row("新就业形态 new employment form", f"{summary.new_employment_form:,}")

    vouchers = Table(title=f"凭证 vouchers ({summary.events:,} events stored)")
    vouchers.add_column("kind 类别")
    vouchers.add_column("count 张数", justify="right")
    for kind, label in KIND_NAMES.items():
        if summary.vouchers[kind]:
            vouchers.add_row(label, f"{summary.vouchers[kind]:,}")
    vouchers.add_row("total 合计", f"{sum(summary.vouchers.values()):,}", style="bold")
    vouchers.add_row("已冲销 reversed", f"{summary.reversed_vouchers:,}")

    registers = Table(title="档案 registers: 困难职工档案 hardship files, 劳模名册 model workers")
    registers.add_column("")
    registers.add_column("count 数量", justify="right")
    registers.add_row("在档 open hardship files", f"{summary.hardship_files['open']:,}")
    for category, label in CATEGORIES.items():
        registers.add_row(f"  {label} {category}", f"{summary.hardship_categories[category]:,}")
    registers.add_row("已脱困 closed", f"{summary.hardship_files['closed']:,}")
    registers.add_row("年度复核 yearly reviews", f"{summary.hardship_reviews:,}")
    registers.add_row("劳模 model workers", f"{sum(summary.model_workers.values()):,}")
    for level, label in LEVELS.items():
        registers.add_row(f"  {label} {level}", f"{summary.model_workers[level]:,}")
    registers.add_row("已撤销 revoked", f"{summary.model_workers_revoked:,}")

    money = Table(title=f"{summary.root_name}: 资金 funds (yuan)")
    money.add_column("account 科目")
    money.add_column("amount 金额", justify="right")
    money.add_row("102 银行存款 bank deposits", yuan(summary.bank))
    for counterparty, owed in summary.owed_up.items():
        money.add_row(f"211 应付上级经费 payable to {counterparty}", yuan(owed))
    money.add_row(
        f"212 应付下级经费 payable to {summary.owed_down_counterparties:,} lower unions",
        yuan(summary.owed_down),
    )
    money.add_row("215 建会筹备金 founding reserves held", yuan(summary.founding_reserves))
    return [orgs, people, vouchers, registers, money]
