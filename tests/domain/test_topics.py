"""Stored topics: every aggregate and event the domain triggers has a fixed "ledger:" topic.

Stored events name their class by topic. The golden lists below pin those names: renaming a
class or moving a module must not change them, or stored events would no longer load.
Changing this list means migrating stored events (register the old topic, or upcast).
"""

from __future__ import annotations

import datetime
import importlib
import pkgutil
import uuid

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

import domain
from domain.access import PiiRead, SearchWindow, Token
from domain.base import LedgerAggregate
from domain.idempotency import IdempotencyRecord
from domain.levy import LevyPolicy, parse_shares
from domain.money import Money
from domain.organizations import Deployment
from domain.period import Month
from domain.policies import LevyPolicies
from domain.reconciliation_runs import ReconciliationRegister, ReconciliationRun
from domain.registers import HardshipFile, ModelWorker
from domain.reserves import FoundingReserve
from domain.vouchers import Book, Voucher, credit, debit
from tests.domain.builders import found, join, small_tree

GOLDEN_AGGREGATE_TOPICS = {
    "ledger:Book",
    "ledger:Deployment",
    "ledger:FoundingReserve",
    "ledger:HardshipFile",
    "ledger:IdempotencyRecord",
    "ledger:LevyPolicies",
    "ledger:Member",
    "ledger:ModelWorker",
    "ledger:Organisation",
    "ledger:PiiRead",
    "ledger:ReconciliationRegister",
    "ledger:ReconciliationRun",
    "ledger:SearchWindow",
    "ledger:Token",
    "ledger:Voucher",
}

GOLDEN_EVENT_TOPICS = {
    "ledger:Book.MonthClosed",
    "ledger:Book.MonthReopened",
    "ledger:Book.Opened",
    "ledger:Book.Recorded",
    "ledger:Deployment.RootFounded",
    "ledger:FoundingReserve.Held",
    "ledger:FoundingReserve.Opened",
    "ledger:FoundingReserve.Released",
    "ledger:FoundingReserve.UnionDissolved",
    "ledger:FoundingReserve.UnionFounded",
    "ledger:FoundingReserve.Withdrawn",
    "ledger:HardshipFile.Closed",
    "ledger:HardshipFile.Opened",
    "ledger:HardshipFile.PayoutNoted",
    "ledger:HardshipFile.Reviewed",
    "ledger:IdempotencyRecord.Recorded",
    "ledger:LevyPolicies.Adopted",
    "ledger:LevyPolicies.Opened",
    "ledger:Member.Corrected",
    "ledger:Member.Exited",
    "ledger:Member.Joined",
    "ledger:Member.Reinstated",
    "ledger:Member.Rejoined",
    "ledger:Member.Retained",
    "ledger:Member.TransferAccepted",
    "ledger:Member.TransferCancelled",
    "ledger:Member.TransferStarted",
    "ledger:ModelWorker.HonourAdded",
    "ledger:ModelWorker.PayoutNoted",
    "ledger:ModelWorker.Registered",
    "ledger:ModelWorker.Revoked",
    "ledger:Organisation.ChildAttached",
    "ledger:Organisation.ChildDetached",
    "ledger:Organisation.Changed",
    "ledger:Organisation.Dissolved",
    "ledger:Organisation.Founded",
    "ledger:Organisation.MemberAdmitted",
    "ledger:Organisation.MembersAdmitted",
    "ledger:Organisation.MemberReleased",
    "ledger:PiiRead.Recorded",
    "ledger:ReconciliationRegister.Added",
    "ledger:ReconciliationRegister.Opened",
    "ledger:ReconciliationRun.Recorded",
    "ledger:ReconciliationRun.SignedOff",
    "ledger:SearchWindow.Opened",
    "ledger:SearchWindow.Searched",
    "ledger:Token.Minted",
    "ledger:Token.Revoked",
    "ledger:Voucher.Posted",
    "ledger:Voucher.Reversed",
}


def _all_aggregate_classes() -> list[type[LedgerAggregate]]:
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found_classes: list[type[LedgerAggregate]] = []
    pending = list(LedgerAggregate.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("domain."):
            found_classes.append(cls)
        pending.extend(cls.__subclasses__())
    return found_classes


def _declared_event_classes(cls: type) -> list[type]:
    """Events an aggregate declares; "Event" is the abstract base and "Created" is the unused
    default creation event (each aggregate's __init__ names its own, e.g. "Posted")."""
    return [
        obj
        for name, obj in vars(cls).items()
        if isinstance(obj, type)
        and issubclass(obj, CanMutateAggregate)
        and name not in ("Event", "Created")
    ]


def test_every_aggregate_class_has_its_pinned_explicit_topic() -> None:
    classes = _all_aggregate_classes()
    topics = {get_topic(cls) for cls in classes}
    assert topics == GOLDEN_AGGREGATE_TOPICS
    for cls in classes:
        assert "TOPIC" in vars(cls), cls
        assert cls.TOPIC == get_topic(cls)
        assert resolve_topic(cls.TOPIC) is cls


def test_every_declared_event_class_has_its_pinned_explicit_topic() -> None:
    topics = set()
    for cls in _all_aggregate_classes():
        for event_class in _declared_event_classes(cls):
            topic = get_topic(event_class)
            assert "TOPIC" in vars(event_class), event_class
            assert topic.startswith(f"{cls.TOPIC}."), topic
            assert resolve_topic(topic) is event_class
            topics.add(topic)
    assert topics == GOLDEN_EVENT_TOPICS


def _trigger_every_event() -> list[LedgerAggregate]:
    """Drives every command of every aggregate once, in memory, and returns the aggregates."""
    day = datetime.date(2024, 3, 1)
    deployment = Deployment(root_code="root")
    tree = small_tree()
    county2 = found("county", tree["city"])
    b1, b2 = tree["b1"], tree["b2"]
    b2.change(
        effective_on=day,
        name="改名",
        employee_count=None,
        new_parent=county2,
        new_parent_ancestors=[tree["city"].code, tree["province"].code],
    )
    tree["county"].detach_child(b2.code)
    county2.attach_child(b2.code)

    member = join(b1)
    transfer_id = member.start_transfer(to_organization=b2, effective_on=day, reason_code=1)
    member.cancel_transfer(transfer_id=transfer_id)
    transfer_id = member.start_transfer(to_organization=b2, effective_on=day, reason_code=1)
    member.accept_transfer(transfer_id=transfer_id, releasing=b1, receiving=b2, effective_on=day)
    member.retain(effective_on=day, reason_code=3)
    member.reinstate(effective_on=day)
    member.correct(changes={"mobile": "13900000000"}, note=None)
    member.exit(organization=b2, effective_on=day, change_code=6, reason_code=5)
    member.rejoin(
        name="张三",
        mobile=None,
        migrant_worker=False,
        new_employment_form=False,
        organization=b1,
        joined_on=day,
    )
    b2.admit_members([("m-1", day), ("m-2", day)])
    tree["jb"].dissolve(day)

    postings = [debit("A", "102", Money(100)), credit("A", "401", Money(100))]
    voucher = Voucher(
        id=uuid.uuid4(), kind="dues", effective_on=day, postings=postings, details={}, reverses=None
    )
    voucher.mark_reversed(str(uuid.uuid4()))
    book = Book(organization_code="A")
    book.record(str(voucher.id), day, postings)
    book.close_month(Month(2024, 3), datetime.date(2026, 1, 1))
    book.reopen_month(Month(2024, 3), "reason")
    book.close_month(Month(2024, 3), datetime.date(2026, 1, 1))

    policies = LevyPolicies()
    shares = parse_shares(
        {
            "base": "60",
            "township": "5",
            "county": "15",
            "city": "10",
            "province": "5",
            "national": "5",
        }
    )
    policies.adopt(LevyPolicy("11", day, shares))

    reserve = FoundingReserve(employer_code="91110105MA0000000X")
    reserve.hold(voucher_id="v1", holder_code="K", period="2024-03", amount=Money(100))
    reserve.hold(voucher_id="v2", holder_code="K", period="2024-03", amount=Money(100))
    reserve.release(held_voucher_id="v1", release_voucher_id="v3", base_code="B")
    reserve.withdraw("v2")
    reserve.union_founded("B")
    reserve.union_dissolved("B")

    moment = datetime.datetime(2024, 3, 1, 9, 0, tzinfo=datetime.UTC)
    token = Token(
        id=uuid.uuid4(),
        role="clerk",
        organization_code=None,
        pii=False,
        secret_hash="h",
        expires_at=moment + datetime.timedelta(days=1),
    )
    token.revoke(moment)
    window = SearchWindow(id=uuid.uuid4(), token_id=str(token.id), starts_at=moment)
    window.search(member_id=None, organization_code=None, limit=60, at=moment)
    hardship = HardshipFile.open(
        member=member,
        organization=b1,
        serial=1,
        category="relative",
        causes=["illness"],
        household_size=3,
        monthly_income_per_head="800.00",
        opened_on=day,
    )
    hardship.review(
        reviewed_on=day, category="deep", household_size=3, monthly_income_per_head="700.00"
    )
    hardship.note_payout(day)
    hardship.close(closed_on=day + datetime.timedelta(days=1), reason="就业增收")
    honoured = ModelWorker.register(
        member_id=str(member.id),
        id_number=member.id_number,
        name="张三",
        organization=b1,
        honour="县级劳动模范",
        level="county",
        awarded_year=2020,
    )
    honoured.add_honour(honour="市级劳动模范", level="city", awarded_year=2022)
    honoured.note_payout(day)
    honoured.revoke(revoked_on=day + datetime.timedelta(days=1), reason="撤销称号")
    read = PiiRead(purpose="GET /v1/members/{member_id}", member_ids=[str(member.id)])
    record = IdempotencyRecord(id=uuid.uuid4(), command="join_member", fingerprint="f", result={})
    run = ReconciliationRun(
        id=uuid.uuid4(), organization_code="K", period="2024-03", window_days=5, report={}
    )
    run.sign_off(note="ok", by="token:t", at=moment)
    register = ReconciliationRegister(organization_code="K")
    register.add(str(run.id), "2024-03")
    return [
        deployment,
        *tree.values(),
        county2,
        member,
        voucher,
        book,
        policies,
        reserve,
        token,
        window,
        read,
        record,
        run,
        register,
        hardship,
        honoured,
    ]


def test_every_triggered_event_is_stored_under_a_pinned_ledger_topic() -> None:
    triggered: set[str] = set()
    originators: set[str] = set()
    for aggregate in _trigger_every_event():
        for event in aggregate.collect_events():
            topic = get_topic(type(event))
            assert topic.startswith("ledger:"), topic
            assert event.actor == "system"
            triggered.add(topic)
            if hasattr(event, "originator_topic"):
                originators.add(event.originator_topic)
    assert triggered == GOLDEN_EVENT_TOPICS
    assert originators <= GOLDEN_AGGREGATE_TOPICS
