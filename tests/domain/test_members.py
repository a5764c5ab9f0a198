"""Members (会员): joining, transfers (接转), retention (保留会籍), exits and rejoins. In memory."""

from __future__ import annotations

import datetime
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import (
    AlreadyMember,
    InvalidStatus,
    InvalidValue,
    NotFound,
    OrganizationNotActive,
    TransferPending,
)
from domain.members import (
    ACTIVE,
    LEFT,
    REMOVAL,
    RETAINED,
    TRANSFER_PENDING,
    WITHDRAWAL,
    Member,
    parse_reason,
)
from tests.domain.builders import join, person, replay, small_tree

JOINED = datetime.date(2020, 3, 1)
LATER = datetime.date(2021, 6, 1)
EARLIER = datetime.date(2020, 2, 1)


def rejoin(member: Member, organization, joined_on: datetime.date) -> None:
    member.rejoin(
        name="张三",
        mobile=None,
        migrant_worker=True,
        new_employment_form=False,
        organization=organization,
        joined_on=joined_on,
    )


# --- joining (入会) -------------------------------------------------------------------------------


def test_joining_puts_the_person_on_the_unions_roll() -> None:
    tree = small_tree()
    identity = person(datetime.date(1990, 7, 1), sequence=124)
    member = join(tree["b1"], identity=identity)
    assert member.status == ACTIVE and member.is_member
    assert member.organization_code == tree["b1"].code
    assert member.identity == identity
    assert member.identity.sex == "female"
    assert tree["b1"].member_count == 1


def test_a_joint_base_union_takes_members_too() -> None:
    tree = small_tree()
    join(tree["jb"])
    assert tree["jb"].member_count == 1


def test_a_member_is_at_least_16_on_the_joining_date() -> None:
    tree = small_tree()
    birth = datetime.date(2004, 2, 29)
    identity = person(birth)
    with pytest.raises(InvalidValue) as caught:
        join(tree["b1"], identity=identity, joined_on=datetime.date(2020, 2, 28))
    assert caught.value.field == "joined_on"
    assert tree["b1"].member_count == 0
    # A leap-day child turns 16 on 1 March in a common year.
    join(tree["b1"], identity=identity, joined_on=datetime.date(2020, 3, 1))


@pytest.mark.parametrize(
    ("birth", "joined_on", "allowed"),
    [
        (datetime.date(2000, 6, 15), datetime.date(2016, 6, 14), False),
        (datetime.date(2000, 6, 15), datetime.date(2016, 6, 15), True),
        (datetime.date(2000, 6, 15), datetime.date(2015, 12, 31), False),
        (datetime.date(1950, 1, 1), datetime.date(2020, 1, 1), True),
    ],
)
def test_the_sixteenth_birthday_is_the_first_joining_day(
    birth: datetime.date, joined_on: datetime.date, allowed: bool
) -> None:
    tree = small_tree()
    if allowed:
        join(tree["b1"], identity=person(birth), joined_on=joined_on)
    else:
        with pytest.raises(InvalidValue):
            join(tree["b1"], identity=person(birth), joined_on=joined_on)


def test_nobody_joins_a_dissolved_union_or_a_union_above_the_base() -> None:
    tree = small_tree()
    tree["b2"].dissolve(JOINED)
    with pytest.raises(OrganizationNotActive):
        join(tree["b2"])
    with pytest.raises(InvalidValue) as caught:
        join(tree["county"])
    assert caught.value.field == "organization_code"


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", ""), ("mobile", "12345"), ("migrant_worker", "yes"), ("new_employment_form", 1)],
)
def test_joining_validates_the_personal_details(field: str, value: object) -> None:
    tree = small_tree()
    details: dict[str, object] = dict(
        name="李四", mobile=None, migrant_worker=False, new_employment_form=False
    )
    details[field] = value
    with pytest.raises(InvalidValue) as caught:
        Member.join(
            member_id=uuid.uuid4(),
            id_number=person(),
            organization=tree["b1"],
            joined_on=JOINED,
            **details,
        )
    assert caught.value.field == field


# --- transfers (会员组织关系接转) ----------------------------------------------------------------


def test_a_transfer_stays_pending_on_the_releasing_roll_until_accepted() -> None:
    tree = small_tree()
    b1, b2 = tree["b1"], tree["b2"]
    member = join(b1)
    transfer_id = member.start_transfer(to_organization=b2, effective_on=LATER, reason_code=1)
    assert member.status == TRANSFER_PENDING
    assert member.organization_code == b1.code
    assert (b1.member_count, b2.member_count) == (1, 0)
    member.accept_transfer(transfer_id=transfer_id, releasing=b1, receiving=b2, effective_on=LATER)
    assert member.status == ACTIVE
    assert member.organization_code == b2.code
    assert (b1.member_count, b2.member_count) == (0, 1)


def test_only_one_transfer_can_be_pending() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=1)
    with pytest.raises(TransferPending):
        member.start_transfer(to_organization=tree["jb"], effective_on=LATER, reason_code=1)


@pytest.mark.parametrize("action", ["retain", "exit", "reinstate"])
def test_a_pending_transfer_blocks_other_changes(action: str) -> None:
    tree = small_tree()
    member = join(tree["b1"])
    member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=1)
    with pytest.raises(TransferPending):
        if action == "retain":
            member.retain(effective_on=LATER, reason_code=3)
        elif action == "exit":
            member.exit(
                organization=tree["b1"], effective_on=LATER, change_code=WITHDRAWAL, reason_code=5
            )
        else:
            member.reinstate(effective_on=LATER)


def test_a_cancelled_transfer_leaves_the_member_where_they_were() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    transfer_id = member.start_transfer(
        to_organization=tree["b2"], effective_on=LATER, reason_code=1
    )
    member.cancel_transfer(transfer_id=transfer_id)
    assert member.status == ACTIVE and member.pending_transfer is None
    assert member.organization_code == tree["b1"].code
    with pytest.raises(NotFound):
        member.accept_transfer(
            transfer_id=transfer_id, releasing=tree["b1"], receiving=tree["b2"], effective_on=LATER
        )
    # A new transfer can start afterwards.
    member.start_transfer(to_organization=tree["jb"], effective_on=LATER, reason_code=1)


def test_a_transfer_needs_an_active_receiving_base_union() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    tree["b2"].dissolve(LATER)
    with pytest.raises(OrganizationNotActive):
        member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=1)
    with pytest.raises(InvalidValue):
        member.start_transfer(to_organization=tree["county"], effective_on=LATER, reason_code=1)
    with pytest.raises(InvalidValue):
        member.start_transfer(to_organization=tree["b1"], effective_on=LATER, reason_code=1)
    assert member.status == ACTIVE


def test_accepting_into_a_union_dissolved_meanwhile_is_refused() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    transfer_id = member.start_transfer(
        to_organization=tree["b2"], effective_on=LATER, reason_code=1
    )
    tree["b2"].dissolve(LATER)
    with pytest.raises(OrganizationNotActive):
        member.accept_transfer(
            transfer_id=transfer_id, releasing=tree["b1"], receiving=tree["b2"], effective_on=LATER
        )
    assert member.status == TRANSFER_PENDING
    assert tree["b1"].member_count == 1


def test_accepting_an_unknown_transfer_is_not_found() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=1)
    with pytest.raises(NotFound):
        member.accept_transfer(
            transfer_id=str(uuid.uuid4()),
            releasing=tree["b1"],
            receiving=tree["b2"],
            effective_on=LATER,
        )


@pytest.mark.parametrize("reason", [0, 7, True, "1", None])
def test_a_transfer_names_a_national_reason_code(reason: object) -> None:
    tree = small_tree()
    member = join(tree["b1"])
    with pytest.raises(InvalidValue) as caught:
        member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=reason)  # type: ignore[arg-type]
    assert caught.value.field == "reason_code"


# --- retention, reinstatement, exit ------------------------------------------------------------


def test_retain_reinstate_exit_state_machine() -> None:
    tree = small_tree()
    b1 = tree["b1"]
    member = join(b1)
    member.retain(effective_on=LATER, reason_code=3)
    assert (member.status, member.retention_reason) == (RETAINED, 3)
    with pytest.raises(InvalidStatus):
        member.retain(effective_on=LATER, reason_code=3)
    with pytest.raises(InvalidStatus):
        member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=1)
    member.reinstate(effective_on=LATER)
    assert (member.status, member.retention_reason) == (ACTIVE, None)
    with pytest.raises(InvalidStatus):
        member.reinstate(effective_on=LATER)
    member.retain(effective_on=LATER, reason_code=2)
    member.exit(organization=b1, effective_on=LATER, change_code=REMOVAL, reason_code=6)
    assert member.status == LEFT and not member.is_member
    assert b1.member_count == 0
    for attempt in (
        lambda: member.retain(effective_on=LATER, reason_code=3),
        lambda: member.reinstate(effective_on=LATER),
        lambda: member.exit(
            organization=b1, effective_on=LATER, change_code=WITHDRAWAL, reason_code=5
        ),
        lambda: member.start_transfer(
            to_organization=tree["b2"], effective_on=LATER, reason_code=1
        ),
    ):
        with pytest.raises(InvalidStatus):
            attempt()


@pytest.mark.parametrize("change_code", [1, 2, 3, 4, 7, True])
def test_an_exit_is_a_removal_or_a_withdrawal(change_code: object) -> None:
    tree = small_tree()
    member = join(tree["b1"])
    with pytest.raises(InvalidValue) as caught:
        member.exit(
            organization=tree["b1"], effective_on=LATER, change_code=change_code, reason_code=5
        )  # type: ignore[arg-type]
    assert caught.value.field == "change_code"


@pytest.mark.parametrize("action", ["transfer", "retain", "exit", "reinstate", "rejoin"])
def test_effective_dates_are_not_before_the_last_change(action: str) -> None:
    tree = small_tree()
    member = join(tree["b1"], joined_on=JOINED)
    if action == "reinstate":
        member.retain(effective_on=LATER, reason_code=3)
    if action == "rejoin":
        member.exit(
            organization=tree["b1"], effective_on=LATER, change_code=WITHDRAWAL, reason_code=5
        )
    before = (LATER if action in ("reinstate", "rejoin") else JOINED) - datetime.timedelta(days=1)
    with pytest.raises(InvalidValue):
        if action == "transfer":
            member.start_transfer(to_organization=tree["b2"], effective_on=before, reason_code=1)
        elif action == "retain":
            member.retain(effective_on=before, reason_code=3)
        elif action == "exit":
            member.exit(
                organization=tree["b1"], effective_on=before, change_code=WITHDRAWAL, reason_code=5
            )
        elif action == "reinstate":
            member.reinstate(effective_on=before)
        else:
            rejoin(member, tree["b2"], before)


def test_an_accepted_transfer_cannot_predate_its_start() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    transfer_id = member.start_transfer(
        to_organization=tree["b2"], effective_on=LATER, reason_code=1
    )
    with pytest.raises(InvalidValue):
        member.accept_transfer(
            transfer_id=transfer_id,
            releasing=tree["b1"],
            receiving=tree["b2"],
            effective_on=LATER - datetime.timedelta(1),
        )


# --- rejoining ---------------------------------------------------------------------------------


def test_a_person_who_left_may_join_again_anywhere() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    member.exit(organization=tree["b1"], effective_on=LATER, change_code=WITHDRAWAL, reason_code=5)
    rejoin(member, tree["b2"], LATER)
    assert member.status == ACTIVE and member.is_member
    assert member.organization_code == tree["b2"].code
    assert member.joined_on == LATER and member.migrant_worker is True
    assert (tree["b1"].member_count, tree["b2"].member_count) == (0, 1)


@pytest.mark.parametrize("state", [ACTIVE, RETAINED, TRANSFER_PENDING])
def test_rejoining_while_a_member_is_refused(state: str) -> None:
    tree = small_tree()
    member = join(tree["b1"])
    if state == RETAINED:
        member.retain(effective_on=LATER, reason_code=3)
    elif state == TRANSFER_PENDING:
        member.start_transfer(to_organization=tree["b2"], effective_on=LATER, reason_code=1)
    with pytest.raises(AlreadyMember):
        rejoin(member, tree["b2"], LATER)
    assert tree["b2"].member_count == 0


def test_rejoining_a_dissolved_union_is_refused() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    member.exit(organization=tree["b1"], effective_on=LATER, change_code=REMOVAL, reason_code=6)
    tree["b2"].dissolve(LATER)
    with pytest.raises(OrganizationNotActive):
        rejoin(member, tree["b2"], LATER)
    assert member.status == LEFT


# --- corrections (更正) ----------------------------------------------------------------------


def test_a_correction_changes_personal_details_but_never_the_identity_number() -> None:
    tree = small_tree()
    member = join(tree["b1"])
    member.correct(changes={"name": "张三丰", "mobile": ""}, note="户籍更名")
    assert (member.name, member.mobile) == ("张三丰", None)
    with pytest.raises(InvalidValue) as caught:
        member.correct(changes={"id_number": "11010519491231002X"}, note=None)
    assert caught.value.field == "id_number"
    with pytest.raises(InvalidValue):
        member.correct(changes={}, note=None)
    with pytest.raises(InvalidValue):
        member.correct(changes={"name": "x"}, note="n" * 501)


# --- replay equals command -----------------------------------------------------------------------

ACTIONS = st.lists(
    st.sampled_from(["transfer", "accept", "cancel", "retain", "reinstate", "exit", "rejoin"]),
    max_size=12,
)


@settings(deadline=None, max_examples=100)
@given(ACTIONS)
def test_any_sequence_of_changes_keeps_the_rolls_consistent_and_replays_identically(
    actions: list[str],
) -> None:
    """Random commands, valid or not: refused ones change nothing, and the member's state and
    the unions' member counts always agree; replaying the events rebuilds the same member."""
    tree = small_tree()
    unions = [tree["b1"], tree["b2"], tree["jb"]]
    member = join(tree["b1"])
    day = JOINED
    transfer_id = None
    for i, action in enumerate(actions):
        day = day + datetime.timedelta(days=30)
        target = unions[i % 3]
        current = next(u for u in unions if u.code == member.organization_code)
        try:
            if action == "transfer":
                transfer_id = member.start_transfer(
                    to_organization=target, effective_on=day, reason_code=1
                )
            elif action == "accept" and member.pending_transfer is not None:
                receiving = next(
                    u for u in unions if u.code == member.pending_transfer["to_organization_code"]
                )
                member.accept_transfer(
                    transfer_id=transfer_id,
                    releasing=current,
                    receiving=receiving,
                    effective_on=day,
                )
            elif action == "cancel" and transfer_id is not None:
                member.cancel_transfer(transfer_id=transfer_id)
            elif action == "retain":
                member.retain(effective_on=day, reason_code=2)
            elif action == "reinstate":
                member.reinstate(effective_on=day)
            elif action == "exit":
                member.exit(
                    organization=current, effective_on=day, change_code=WITHDRAWAL, reason_code=5
                )
            elif action == "rejoin":
                rejoin(member, target, day)
        except (InvalidStatus, InvalidValue, TransferPending, AlreadyMember, NotFound):
            pass
        counts = {u.code: u.member_count for u in unions}
        expected = {u.code: 0 for u in unions}
        if member.is_member:
            expected[member.organization_code] = 1
        assert counts == expected
        assert (member.status == TRANSFER_PENDING) == (member.pending_transfer is not None)
    state = {k: v for k, v in vars(member).items() if k != "_pending_events"}
    rebuilt = replay(member)
    assert {k: v for k, v in vars(rebuilt).items() if k != "_pending_events"} == state


# --- joining in bulk (a roster import): the union records the chunk's admissions at once ------


def test_joins_with_admissions_put_the_people_on_the_roll_in_one_union_event() -> None:
    from domain.organizations import Admissions

    tree = small_tree()
    b1, b2 = tree["b1"], tree["b2"]
    left = join(b2)
    left.exit(organization=b2, effective_on=JOINED, change_code=WITHDRAWAL, reason_code=5)
    b1.collect_events()
    admissions = Admissions(b1)
    members = [
        Member.join(
            member_id=uuid.uuid4(),
            id_number=person(),
            name="张三",
            mobile=None,
            migrant_worker=False,
            new_employment_form=False,
            organization=b1,
            joined_on=LATER,
            admissions=admissions,
        )
        for _ in range(3)
    ]
    left.rejoin(
        name="李四",
        mobile=None,
        migrant_worker=False,
        new_employment_form=False,
        organization=b1,
        joined_on=LATER,
        admissions=admissions,
    )
    assert b1.member_count == 0 and b1.collect_events() == []
    admissions.record()
    events = b1.collect_events()
    assert [type(e).__name__ for e in events] == ["MembersAdmitted"]
    assert events[0].admitted[0]["member_ids"] == [str(m.id) for m in (*members, left)]
    assert b1.member_count == 4 and left.organization_code == b1.code


def test_a_rejoin_before_the_new_unions_founding_is_refused_without_a_trace() -> None:
    from domain.organizations import Admissions

    tree = small_tree()
    member = join(tree["b1"])
    member.exit(organization=tree["b1"], effective_on=JOINED, change_code=WITHDRAWAL, reason_code=5)
    from tests.domain.builders import found

    young = found("base", tree["county"], founded_on=LATER)
    member.collect_events()
    young.collect_events()
    admissions = Admissions(young)
    for use in (None, admissions):
        with pytest.raises(InvalidValue) as caught:
            member.rejoin(
                name="张三",
                mobile=None,
                migrant_worker=False,
                new_employment_form=False,
                organization=young,
                joined_on=LATER - datetime.timedelta(days=1),
                admissions=use,
            )
        assert caught.value.field == "joined_on"
    assert member.collect_events() == [] and young.collect_events() == []
    assert member.status == LEFT and len(admissions) == 0


@pytest.mark.parametrize(
    ("change_code", "fits"),
    [(3, {1, 2, 3, 4, 7}), (4, {1}), (5, {6}), (6, {5})],
)
def test_a_reason_must_fit_its_change(change_code: int, fits: set[int]) -> None:
    """会籍变化原因 fits its change: transfer 1; retention 1-4 or 7 (退休); withdrawal 5;
    removal 6. A retention for reason 6 (expelled) was accepted before."""
    for reason in range(1, 8):
        if reason in fits:
            assert parse_reason(reason, change_code=change_code) == reason
        else:
            with pytest.raises(InvalidValue, match="does not fit"):
                parse_reason(reason, change_code=change_code)
    with pytest.raises(InvalidValue, match="1-7"):
        parse_reason(8, change_code=change_code)
