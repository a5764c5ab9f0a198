"""Hardship files and model workers, in memory: their rules and their replay."""

from __future__ import annotations

import datetime
import uuid

import pytest

from domain.errors import InvalidStatus, InvalidValue, NotAMember
from domain.registers import (
    HardshipFile,
    ModelWorker,
    NotHomeUnion,
    NotOnRegister,
    one_year_after,
)
from tests.domain.builders import join, replay, small_tree

DAY = datetime.date(2025, 3, 1)


def _open(member, org, **overrides):
    fields = dict(
        member=member,
        organization=org,
        serial=1,
        category="relative",
        causes=["unemployment", "illness"],
        household_size=3,
        monthly_income_per_head="650.50",
        opened_on=DAY,
    )
    fields.update(overrides)
    return HardshipFile.open(**fields)


def test_a_file_opens_reviews_and_closes_and_replays_the_same() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    file = _open(member, tree["b1"])
    assert file.id == HardshipFile.id_for(str(member.id), 1)
    assert file.causes == ["illness", "unemployment"]  # the fixed order
    assert file.income_fen == 65050
    assert file.review_due() == datetime.date(2026, 3, 1)
    file.review(
        reviewed_on=datetime.date(2026, 2, 1),
        category="deep",
        household_size=4,
        monthly_income_per_head="500",
    )
    assert (file.category, file.household_size, file.reviews) == ("deep", 4, 1)
    assert file.review_due() == datetime.date(2027, 2, 1)
    assert file.open_on(datetime.date(2026, 6, 1))
    file.close(closed_on=datetime.date(2026, 6, 1), reason="再就业,收入稳定")
    assert not file.open_on(datetime.date(2026, 6, 1))
    assert file.open_on(datetime.date(2026, 5, 31))
    assert not file.open_on(datetime.date(2025, 2, 28))
    copy = replay(file)
    assert vars(copy) == vars(file) | {"_pending_events": []}
    with pytest.raises(InvalidStatus):
        file.review(
            reviewed_on=datetime.date(2026, 7, 1),
            category="deep",
            household_size=4,
            monthly_income_per_head="500",
        )
    with pytest.raises(InvalidStatus):
        file.close(closed_on=datetime.date(2026, 7, 1), reason="again")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("category", "poor"),
        ("causes", []),
        ("causes", ["illness", "illness"]),
        ("causes", ["gambling"]),
        ("causes", "illness"),
        ("household_size", 0),
        ("household_size", True),
        ("household_size", "3"),
        ("monthly_income_per_head", 650.5),
        ("monthly_income_per_head", "-1.00"),
        ("opened_on", datetime.date(2019, 1, 1)),
    ],
)
def test_bad_values_are_refused_naming_the_field(field, value) -> None:
    tree = small_tree()
    member = join(tree["b1"])
    with pytest.raises(InvalidValue) as caught:
        _open(member, tree["b1"], **{field: value})
    assert caught.value.field == field


def test_only_the_members_own_union_opens_a_file_and_only_for_a_member() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    with pytest.raises(NotHomeUnion):
        _open(member, tree["b2"])
    member.exit(organization=tree["b1"], effective_on=DAY, change_code=6, reason_code=5)
    with pytest.raises(NotAMember):
        _open(member, tree["b1"])


def test_review_and_closure_are_not_back_dated() -> None:
    tree = small_tree()
    file = _open(join(tree["b1"]), tree["b1"])
    with pytest.raises(InvalidValue):
        file.close(closed_on=DAY - datetime.timedelta(days=1), reason="x")
    with pytest.raises(InvalidValue):
        file.close(closed_on=DAY, reason="   ")


def test_a_model_worker_is_valid_from_the_award_year_until_revoked() -> None:
    tree = small_tree()
    member_id = str(uuid.uuid4())
    worker = ModelWorker.register(
        member_id=member_id,
        id_number="110105198506150011",
        name="李四",
        organization=tree["county"],
        honour="县级劳动模范",
        level="county",
        awarded_year=2021,
    )
    assert worker.id == ModelWorker.id_for(member_id)
    assert not worker.valid_on(datetime.date(2020, 12, 31))
    assert worker.valid_on(datetime.date(2021, 1, 1))
    worker.add_honour(honour="省部级劳动模范", level="provincial", awarded_year=2023)
    assert worker.level == "provincial"
    with pytest.raises(InvalidStatus):
        worker.add_honour(honour="省部级劳动模范", level="provincial", awarded_year=2023)
    with pytest.raises(InvalidValue):
        worker.revoke(revoked_on=datetime.date(2020, 1, 1), reason="x")
    worker.revoke(revoked_on=datetime.date(2024, 5, 1), reason="违纪撤销称号")
    assert worker.valid_on(datetime.date(2024, 4, 30))
    assert not worker.valid_on(datetime.date(2024, 5, 1))
    with pytest.raises(InvalidStatus):
        worker.revoke(revoked_on=datetime.date(2024, 6, 1), reason="again")
    with pytest.raises(InvalidStatus):
        worker.add_honour(honour="市级劳动模范", level="city", awarded_year=2024)
    assert vars(replay(worker)) == vars(worker) | {"_pending_events": []}


@pytest.mark.parametrize(
    ("field", "value"),
    [("level", "village"), ("awarded_year", 1900), ("awarded_year", "2020"), ("honour", "")],
)
def test_model_worker_values_are_checked(field, value) -> None:
    tree = small_tree()
    fields = dict(honour="县级劳动模范", level="county", awarded_year=2021)
    fields[field] = value
    with pytest.raises(InvalidValue) as caught:
        ModelWorker.register(
            member_id=str(uuid.uuid4()),
            id_number="110105198506150011",
            name="李四",
            organization=tree["county"],
            **fields,
        )
    assert caught.value.field == field


def test_one_year_after_a_leap_day() -> None:
    assert one_year_after(datetime.date(2024, 2, 29)) == datetime.date(2025, 2, 28)


def test_no_closure_or_revocation_dates_before_a_payout_made_against_the_entry() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    file = _open(member, tree["b1"])
    with pytest.raises(NotOnRegister):
        file.note_payout(DAY - datetime.timedelta(days=1))
    file.note_payout(datetime.date(2025, 5, 1))
    file.note_payout(datetime.date(2025, 4, 1))  # a back-dated payout leaves the latest
    assert file.last_paid_on == datetime.date(2025, 5, 1)
    with pytest.raises(InvalidValue):
        file.close(closed_on=datetime.date(2025, 5, 1), reason="脱困")
    file.close(closed_on=datetime.date(2025, 5, 2), reason="脱困")
    with pytest.raises(NotOnRegister):
        file.note_payout(datetime.date(2025, 5, 2))
    worker = ModelWorker.register(
        member_id=str(member.id),
        id_number=member.id_number,
        name="张三",
        organization=tree["county"],
        honour="县级劳动模范",
        level="county",
        awarded_year=2024,
    )
    worker.note_payout(datetime.date(2025, 4, 1))
    with pytest.raises(InvalidValue):
        worker.revoke(revoked_on=datetime.date(2025, 4, 1), reason="撤销")
    worker.revoke(revoked_on=datetime.date(2025, 4, 2), reason="撤销")
    with pytest.raises(NotOnRegister):
        worker.note_payout(datetime.date(2025, 4, 2))
    assert vars(replay(worker)) == vars(worker) | {"_pending_events": []}
