"""Organisations (工会组织): founding checks, moves, dissolution. In memory, no store."""

from __future__ import annotations

import datetime

import pytest

from domain.errors import (
    AlreadyExists,
    InvalidValue,
    OrganizationInUse,
    OrganizationNotActive,
    TreeViolation,
)
from domain.identity import CreditCode
from domain.organizations import Organization
from scripts.synthetic import employer_code
from tests.domain.builders import FOUNDED_ON, found, new_code, replay, small_tree

DAY = datetime.date(2024, 3, 1)


def found_kwargs(parent: Organization | None, **overrides: object) -> dict[str, object]:
    """Keyword arguments for a valid base union under parent; overrides make it invalid."""
    kwargs: dict[str, object] = dict(
        code=new_code("110105", base=True),
        name="某某公司工会",
        level="base",
        parent=parent,
        region_code="110105",
        founded_on=datetime.date(2010, 5, 1),
        employer_code=CreditCode.parse(employer_code("110105", 77)),
        employee_count=250,
    )
    kwargs.update(overrides)
    return kwargs


# --- founding (建会) ---------------------------------------------------------------------------


def test_founding_attaches_the_union_under_its_parent() -> None:
    tree = small_tree()
    union = Organization.found(**found_kwargs(tree["county"]))
    assert union.status == "active"
    assert union.parent_code == tree["county"].code
    assert union.code in tree["county"].active_children
    assert union.employee_count == 250


def test_a_union_code_starts_with_8() -> None:
    tree = small_tree()
    employer_as_union = CreditCode.parse(employer_code("110105", 5))
    with pytest.raises(InvalidValue, match="starts with 8") as caught:
        Organization.found(**found_kwargs(tree["county"], code=employer_as_union))
    assert caught.value.field == "code"


def test_a_base_union_code_starts_with_81() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue, match="81"):
        Organization.found(**found_kwargs(tree["county"], code=new_code("110105", base=False)))
    with pytest.raises(InvalidValue, match="81"):
        Organization.found(
            **found_kwargs(
                tree["county"],
                code=new_code("110105", base=False),
                level="joint_base",
                employer_code=None,
            )
        )


def test_a_union_above_the_base_has_a_code_starting_with_89() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue, match="89"):
        Organization.found(
            **found_kwargs(
                tree["county"],
                code=new_code("110105", base=True),
                level="township",
                employer_code=None,
                employee_count=None,
            )
        )


def test_the_region_code_equals_characters_3_to_8_of_the_code() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue) as caught:
        Organization.found(
            **found_kwargs(tree["county"], code=new_code("110108", base=True), region_code="110105")
        )
    assert caught.value.field == "region_code"


def test_the_parent_must_be_active() -> None:
    tree = small_tree()
    empty_county = found("county", tree["city"])
    empty_county.dissolve(DAY)
    with pytest.raises(OrganizationNotActive):
        Organization.found(**found_kwargs(empty_county))


@pytest.mark.parametrize(
    ("level", "parent_key"),
    [
        ("city", "county"),  # a city under a county
        ("county", "county"),  # a level under the same level
        ("province", "city"),
        ("base", "b1"),  # a base union under a base union
        ("joint_base", "b1"),
    ],
)
def test_a_level_inversion_is_a_tree_violation(level: str, parent_key: str) -> None:
    tree = small_tree()
    base = level in ("base", "joint_base")
    region = "110105" if base or level == "county" else "110100"
    with pytest.raises(TreeViolation):
        Organization.found(
            code=new_code(region, base=base),
            name="x",
            level=level,
            parent=tree[parent_key],
            region_code=region,
            founded_on=datetime.date(2010, 1, 1),
            employer_code=CreditCode.parse(employer_code(region, 3)) if level == "base" else None,
            employee_count=10 if base else None,
        )


def test_a_base_union_needs_its_employer() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue) as caught:
        Organization.found(**found_kwargs(tree["county"], employer_code=None))
    assert caught.value.field == "employer_code"


def test_a_joint_base_union_serves_many_employers_and_records_none() -> None:
    tree = small_tree()
    joint = Organization.found(
        **found_kwargs(tree["county"], level="joint_base", employer_code=None)
    )
    assert joint.employer_code is None and joint.is_base


@pytest.mark.parametrize("level", ["base", "joint_base"])
def test_a_base_union_needs_its_employee_count(level: str) -> None:
    tree = small_tree()
    employer = CreditCode.parse(employer_code("110105", 4)) if level == "base" else None
    with pytest.raises(InvalidValue) as caught:
        Organization.found(
            **found_kwargs(tree["county"], level=level, employer_code=employer, employee_count=None)
        )
    assert caught.value.field == "employee_count"


@pytest.mark.parametrize("count", [-1, 10_000_001, True, 12.0, "12"])
def test_an_employee_count_is_a_whole_number_in_range(count: object) -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue) as caught:
        Organization.found(**found_kwargs(tree["county"], employee_count=count))
    assert caught.value.field == "employee_count"


def test_only_base_unions_record_an_employer() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue) as caught:
        Organization.found(
            code=new_code("110105", base=False),
            name="街道工会",
            level="township",
            parent=tree["county"],
            region_code="110105",
            founded_on=datetime.date(2010, 1, 1),
            employer_code=CreditCode.parse(employer_code("110105", 6)),
            employee_count=None,
        )
    assert caught.value.field == "employer_code"


def test_a_union_cannot_be_founded_before_its_parent() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue) as caught:
        Organization.found(
            **found_kwargs(tree["county"], founded_on=FOUNDED_ON - datetime.timedelta(days=1))
        )
    assert caught.value.field == "founded_on"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "工会\x00", "a\nb"])
def test_a_name_is_printable_and_not_empty(name: str) -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue) as caught:
        Organization.found(**found_kwargs(tree["county"], name=name))
    assert caught.value.field == "name"


def test_a_child_is_attached_once() -> None:
    tree = small_tree()
    with pytest.raises(AlreadyExists):
        tree["county"].attach_child(tree["b1"].code)


# --- change() ------------------------------------------------------------------------------


def test_a_rename_and_a_recount_change_nothing_else() -> None:
    tree = small_tree()
    b1 = tree["b1"]
    b1.change(
        effective_on=DAY,
        name="新名称",
        employee_count=300,
        new_parent=None,
        new_parent_ancestors=[],
    )
    assert (b1.name, b1.employee_count, b1.parent_code) == ("新名称", 300, tree["county"].code)


def test_a_move_is_recorded_with_its_date() -> None:
    tree = small_tree()
    other_county = found("county", tree["city"])
    b1 = tree["b1"]
    b1.change(
        effective_on=DAY,
        name=None,
        employee_count=None,
        new_parent=other_county,
        new_parent_ancestors=[tree["city"].code, tree["province"].code],
    )
    assert b1.parent_code == other_county.code
    assert b1.parent_on(DAY - datetime.timedelta(days=1)) == tree["county"].code
    assert b1.parent_on(DAY) == other_county.code


def test_moving_under_a_descendant_is_a_cycle() -> None:
    tree = small_tree()
    city, county = tree["city"], tree["county"]
    with pytest.raises(TreeViolation, match="cycle"):
        city.change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=county,
            new_parent_ancestors=[city.code, tree["province"].code],
        )


def test_moving_under_itself_is_a_cycle() -> None:
    tree = small_tree()
    city = tree["city"]
    other_city = found("city", tree["province"])
    with pytest.raises(TreeViolation, match="cycle"):
        city.change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=city,
            new_parent_ancestors=[tree["province"].code],
        )
    # A parent whose ancestors include the union itself: a cycle even where levels allow it.
    with pytest.raises(TreeViolation, match="cycle"):
        tree["county"].change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=other_city,
            new_parent_ancestors=[tree["county"].code, tree["province"].code],
        )


def test_the_root_cannot_move() -> None:
    tree = small_tree()
    national = found("national", None, region_code="110000")
    with pytest.raises(TreeViolation, match="root"):
        tree["province"].change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=national,
            new_parent_ancestors=[],
        )


def test_a_move_keeps_the_levels_in_order() -> None:
    tree = small_tree()
    with pytest.raises(TreeViolation):
        tree["county"].change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=tree["b2"],
            new_parent_ancestors=[tree["county"].code, tree["city"].code],
        )
    with pytest.raises(TreeViolation):
        tree["b1"].change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=tree["jb"],
            new_parent_ancestors=[tree["county"].code, tree["city"].code],
        )


def test_a_move_under_a_dissolved_union_is_refused() -> None:
    tree = small_tree()
    gone = found("county", tree["city"])
    gone.dissolve(DAY)
    with pytest.raises(OrganizationNotActive):
        tree["b1"].change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=gone,
            new_parent_ancestors=[tree["city"].code, tree["province"].code],
        )


def test_a_change_cannot_predate_the_last_move_or_change_nothing() -> None:
    tree = small_tree()
    other_county = found("county", tree["city"])
    b1 = tree["b1"]
    b1.change(
        effective_on=DAY,
        name=None,
        employee_count=None,
        new_parent=other_county,
        new_parent_ancestors=[tree["city"].code, tree["province"].code],
    )
    with pytest.raises(InvalidValue) as caught:
        b1.change(
            effective_on=DAY - datetime.timedelta(days=1),
            name="x",
            employee_count=None,
            new_parent=None,
            new_parent_ancestors=[],
        )
    assert caught.value.field == "effective_on"
    with pytest.raises(InvalidValue):
        b1.change(
            effective_on=DAY,
            name=None,
            employee_count=None,
            new_parent=other_county,
            new_parent_ancestors=[],
        )


def test_a_dissolved_union_cannot_change() -> None:
    tree = small_tree()
    tree["b2"].dissolve(DAY)
    with pytest.raises(OrganizationNotActive):
        tree["b2"].change(
            effective_on=DAY,
            name="x",
            employee_count=None,
            new_parent=None,
            new_parent_ancestors=[],
        )


# --- dissolution (撤销) and members on the roll ---------------------------------------------------


def test_dissolution_is_refused_while_members_remain() -> None:
    tree = small_tree()
    b1 = tree["b1"]
    b1.admit_member("m-1", DAY)
    with pytest.raises(OrganizationInUse, match="members"):
        b1.dissolve(DAY)
    b1.release_member("m-1", DAY)
    b1.dissolve(DAY)
    assert (b1.status, b1.dissolved_on) == ("dissolved", DAY)


def test_dissolution_is_refused_while_active_children_remain() -> None:
    tree = small_tree()
    county = tree["county"]
    with pytest.raises(OrganizationInUse, match="child"):
        county.dissolve(DAY)
    for key in ("b1", "b2", "jb"):
        tree[key].dissolve(DAY)
        county.detach_child(tree[key].code)
    county.dissolve(DAY)
    assert county.status == "dissolved"


def test_a_dissolved_union_takes_no_members_and_is_not_dissolved_twice() -> None:
    tree = small_tree()
    b2 = tree["b2"]
    b2.dissolve(DAY)
    with pytest.raises(OrganizationNotActive):
        b2.admit_member("m-1", DAY)
    with pytest.raises(OrganizationNotActive):
        b2.dissolve(DAY)


def test_dissolution_cannot_predate_founding() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue):
        tree["b2"].dissolve(FOUNDED_ON - datetime.timedelta(days=1))


def test_members_belong_to_base_unions_from_their_founding() -> None:
    tree = small_tree()
    with pytest.raises(InvalidValue):
        tree["county"].admit_member("m-1", DAY)
    with pytest.raises(InvalidValue):
        tree["b1"].admit_member("m-1", FOUNDED_ON - datetime.timedelta(days=1))
    tree["jb"].admit_member("m-1", FOUNDED_ON)
    assert tree["jb"].member_count == 1


def test_detaching_a_stranger_is_a_tree_violation() -> None:
    tree = small_tree()
    with pytest.raises(TreeViolation):
        tree["county"].detach_child(tree["city"].code)


def test_replaying_the_events_rebuilds_the_same_organization() -> None:
    tree = small_tree()
    b1 = tree["b1"]
    b1.admit_member("m-1", DAY)
    b1.change(
        effective_on=DAY, name="改名", employee_count=5, new_parent=None, new_parent_ancestors=[]
    )
    expected = {k: v for k, v in vars(b1).items() if k != "_pending_events"}
    rebuilt = replay(b1)
    assert {k: v for k, v in vars(rebuilt).items() if k != "_pending_events"} == expected


# --- many members admitted in one event (a roster import's chunk) ------------------------------


def test_many_members_are_admitted_in_one_event_that_counts_them_all() -> None:
    tree = small_tree()
    b1 = tree["b1"]
    b1.collect_events()
    b1.admit_members([("m-1", DAY), ("m-2", DAY), ("m-3", DAY + datetime.timedelta(days=1))])
    events = b1.collect_events()
    assert [type(e).__name__ for e in events] == ["MembersAdmitted"]
    assert events[0].admitted == [
        {"effective_on": DAY, "member_ids": ["m-1", "m-2"]},
        {"effective_on": DAY + datetime.timedelta(days=1), "member_ids": ["m-3"]},
    ]
    assert b1.member_count == 3
    with pytest.raises(OrganizationInUse):
        b1.dissolve(DAY)
    for member_id in ("m-1", "m-2", "m-3"):
        b1.release_member(member_id, DAY)
    b1.dissolve(DAY)
    assert b1.status == "dissolved"


@pytest.mark.parametrize("case", ["empty", "twice", "before_founding", "above_base", "dissolved"])
def test_admitting_many_members_checks_each_and_records_nothing_when_refused(case: str) -> None:
    tree = small_tree()
    union = tree["county"] if case == "above_base" else tree["b1"]
    admissions = {
        "empty": [],
        "twice": [("m-1", DAY), ("m-1", DAY)],
        "before_founding": [("m-1", DAY), ("m-2", FOUNDED_ON - datetime.timedelta(days=1))],
    }.get(case, [("m-1", DAY)])
    if case == "dissolved":
        tree["b1"].dissolve(DAY)
    union.collect_events()
    with pytest.raises((InvalidValue, AlreadyExists, OrganizationNotActive)):
        union.admit_members(admissions)
    assert union.collect_events() == [] and union.member_count == 0


def test_admissions_are_checked_one_by_one_and_recorded_as_one_event() -> None:
    from domain.organizations import Admissions

    b1 = small_tree()["b1"]
    b1.collect_events()
    admissions = Admissions(b1)
    admissions.record()  # nothing admitted: no event
    assert b1.collect_events() == []
    admissions.admit("m-1", DAY)
    with pytest.raises(InvalidValue):
        admissions.admit("m-2", FOUNDED_ON - datetime.timedelta(days=1))
    with pytest.raises(AlreadyExists):
        admissions.admit("m-1", DAY)
    admissions.admit("m-3", DAY)
    assert len(admissions) == 2 and b1.member_count == 0 and b1.collect_events() == []
    admissions.record()
    events = b1.collect_events()
    assert len(events) == 1 and events[0].admitted[0]["member_ids"] == ["m-1", "m-3"]
    assert b1.member_count == 2 and len(admissions) == 0
    admissions.record()
    assert b1.collect_events() == []


def test_old_single_and_new_batch_admissions_replay_together() -> None:
    tree = small_tree()
    b1 = tree["b1"]
    b1.admit_member("m-1", DAY)  # the event stored before batch admissions existed
    b1.admit_members([("m-2", DAY), ("m-3", DAY)])
    b1.release_member("m-2", DAY)
    b1.admit_member("m-4", DAY)
    expected = {k: v for k, v in vars(b1).items() if k != "_pending_events"}
    rebuilt = replay(b1)
    assert {k: v for k, v in vars(rebuilt).items() if k != "_pending_events"} == expected
    assert rebuilt.member_count == 3
