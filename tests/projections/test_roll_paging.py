"""Roll pages (会员名册) read by counting, backwards from the end, or from kept anchors: every
way gives exactly the roll in its order, for every as-of date and as-known moment. Both
stores."""

from __future__ import annotations

import dataclasses
import datetime
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

import projections.read_models.rolls as rolls
import projections.read_models.scope as scope_module
from projections.read_models.models import ReadModels
from projections.read_models.rows import day_int, known_us
from projections.read_models.schema import LIVE, TABLES_BY_NAME, ensure_live
from projections.read_models.scope import subtree_codes
from service.commands import (
    AcceptTransfer,
    CancelTransfer,
    ChangeOrganization,
    CorrectMember,
    ExitMember,
    JoinMember,
    ReinstateMember,
    RetainMember,
    StartTransfer,
)
from tests.conftest import BACKENDS
from tests.projections.history import PROPERTY_SETTINGS, random_history
from tests.service.scenario import base_union, found_tree, org_code, person

D = datetime.date


def _moment() -> datetime.datetime:
    moment = datetime.datetime.now(datetime.UTC)
    time.sleep(0.002)
    return moment


@pytest.fixture
def roll_history(ledger):
    """Members of two base unions over half a year, with transfers, retentions, exits and a
    cancelled transfer; several join on the same day (the order then goes by member id)."""
    tree = found_tree(ledger)
    rm = ReadModels(ledger)
    moments = []

    def join(n: int, org: str, day: str) -> str:
        return ledger.execute(
            JoinMember(id_number=person(n), name=f"会员{n}", organization_code=org, joined_on=day)
        ).body["member_id"]

    members = [
        join(n, tree.base_a if n % 3 else tree.base_b, f"2024-0{1 + n % 4}-{10 + n % 2}")
        for n in range(1, 25)
    ]
    moments.append(_moment())
    for m in members[:4]:
        transfer = ledger.execute(
            StartTransfer(
                member_id=m,
                to_organization_code=tree.base_c,
                effective_on="2024-05-01",
                reason_code=1,
            )
        ).body
        ledger.execute(
            AcceptTransfer(
                member_id=m, transfer_id=transfer["transfer_id"], effective_on="2024-05-20"
            )
        )
    pending = ledger.execute(
        StartTransfer(
            member_id=members[5],
            to_organization_code=tree.base_a,
            effective_on="2024-05-03",
            reason_code=1,
        )
    ).body
    moments.append(_moment())
    ledger.execute(CancelTransfer(member_id=members[5], transfer_id=pending["transfer_id"]))
    for m in members[6:10]:
        ledger.execute(RetainMember(member_id=m, effective_on="2024-04-15", reason_code=3))
    ledger.execute(ReinstateMember(member_id=members[6], effective_on="2024-06-01"))
    moments.append(_moment())
    for m in members[10:14]:
        ledger.execute(
            ExitMember(member_id=m, effective_on="2024-05-10", change_code=6, reason_code=5)
        )
    members.append(join(30, tree.base_a, "2024-01-10"))
    rm.catch_up()
    yield ledger, tree, rm, moments
    rm.close()


def _codes_in_scope(rm, cur, code, scope, d, k):
    """The union itself, or its whole subtree as on day d and as known at k."""
    return {code} if scope == "self" else set(subtree_codes(rm.store, cur, LIVE, code, d, k))


def _expected(rm, code, *, as_of, known_at, scope, status):
    """The roll by its definition, worked out in Python from every roll span."""
    d, k = day_int(as_of), known_us(known_at)
    with rm.store.reader() as cur:
        codes = _codes_in_scope(rm, cur, code, scope, d, k)
        cur.execute(
            "SELECT member_id, opened_position, organization_code, status, joined_on,"
            " valid_from, valid_to, opened_at_us, closed_at_us FROM rm_roll_spans"
        )
        spans = cur.fetchall()
    on_roll = [
        s
        for s in spans
        if s[2] in codes
        and (status is None or s[3] == status)
        and s[7] <= k
        and s[5] <= d
        and (s[8] is None or s[8] > k or s[6] > d)
    ]
    on_roll.sort(key=lambda s: (s[4], s[0], s[1]))
    return [(s[0], s[2], s[3], s[4]) for s in on_roll]


def _paged(rm, code, *, page_size, **query):
    rows, total = [], None
    page = 1
    while True:
        found = rm.roll(code, page=page, page_size=page_size, **query)
        assert total is None or found["total"] == total
        total = found["total"]
        if not found["items"]:
            break
        rows += [
            (
                i["member_id"],
                i["organization_code"],
                i["status"],
                day_int(D.fromisoformat(i["joined_on"])),
            )
            for i in found["items"]
        ]
        page += 1
    assert page == -(-total // page_size) + 1
    return rows, total


@pytest.mark.parametrize("anchors", [False, True])
def test_every_page_is_the_roll_in_its_order(roll_history, monkeypatch, anchors):
    _, tree, rm, moments = roll_history
    if anchors:
        monkeypatch.setattr(rolls, "ANCHOR_STRIDE", 3)
        monkeypatch.setattr(rolls, "ANCHOR_MIN_ROWS", 1)
    else:
        monkeypatch.setattr(rolls, "ANCHOR_MIN_ROWS", 10**9)
    cases = 0
    for code, scope in ((tree.base_a, "self"), (tree.base_b, "self"), (tree.county, "subtree")):
        for as_of in (D(2024, 1, 9), D(2024, 2, 11), D(2024, 5, 5), D(2024, 12, 31)):
            for known_at in (None, *moments):
                for status in (None, "retained", "transfer_pending"):
                    query = dict(as_of=as_of, known_at=known_at, scope=scope, status=status)
                    expected = _expected(rm, code, **query)
                    for page_size in (1, 4, 7, 100):
                        # Twice: the second time a roll is asked for, anchors are kept.
                        for _ in range(2):
                            rows, total = _paged(rm, code, page_size=page_size, **query)
                            assert total == len(expected)
                            assert rows == expected, (code, query, page_size)
                    cases += bool(expected)
    assert cases > 40
    assert bool(rm.rolls.anchors._rolls) == anchors


def _count_moves(monkeypatch) -> list[int]:
    """Spies on kept anchors moved to a later version: one entry (the changes) a move."""
    moves: list[int] = []
    move = rolls.Anchors.moved

    def counted(self, version, changes):
        moves.append(len(changes))
        return move(self, version, changes)

    monkeypatch.setattr(rolls.Anchors, "moved", counted)
    return moves


def test_kept_anchors_follow_every_write(roll_history, monkeypatch):
    """Anchors kept at one version are moved to the next by the spans opened and closed
    between, not computed again: the pages stay the roll in its order."""
    ledger, tree, rm, _ = roll_history
    monkeypatch.setattr(rolls, "ANCHOR_STRIDE", 2)
    monkeypatch.setattr(rolls, "ANCHOR_MIN_ROWS", 1)
    moves = _count_moves(monkeypatch)
    computed = []
    compute = rm.rolls._computed
    monkeypatch.setattr(rm.rolls, "_computed", lambda *a: computed.append(1) or compute(*a))
    query = dict(as_of=D(2024, 12, 31), known_at=None, scope="self", status=None)

    def check() -> int:
        expected = _expected(rm, tree.base_a, **query)
        for _ in range(2):
            rows, total = _paged(rm, tree.base_a, page_size=3, **query)
            assert rows == expected and total == len(expected)
        return total

    before = check()
    assert rm.rolls.anchors._rolls
    # A member who sorts first (the earliest join) shifts every page by one.
    first = ledger.execute(
        JoinMember(
            id_number=person(40),
            name="会员40",
            organization_code=tree.base_a,
            joined_on="2023-12-01",
        )
    ).body["member_id"]
    rm.catch_up()
    assert check() == before + 1
    assert rm.roll(tree.base_a, page=1, page_size=1, **query)["items"][0]["member_id"] == first
    ledger.execute(
        ExitMember(member_id=first, effective_on="2024-02-01", change_code=6, reason_code=5)
    )
    rm.catch_up()
    assert check() == before
    # Computed once, on the second ask; moved at each of the two later versions.
    assert len(computed) == 1
    assert moves == [1, 1]


def test_anchors_of_a_subtree_are_computed_again_when_the_tree_moves(roll_history, monkeypatch):
    """A union moved out of a subtree takes its members off the subtree's roll without any
    span changing: the subtree's anchors are not moved across a move of the tree."""
    ledger, tree, rm, _ = roll_history
    monkeypatch.setattr(rolls, "ANCHOR_STRIDE", 2)
    monkeypatch.setattr(rolls, "ANCHOR_MIN_ROWS", 1)
    moves = _count_moves(monkeypatch)
    query = dict(as_of=D(2024, 12, 31), known_at=None, scope="subtree", status=None)

    def check() -> list:
        expected = _expected(rm, tree.county, **query)
        for _ in range(2):
            rows, _total = _paged(rm, tree.county, page_size=3, **query)
            assert rows == expected
        return expected

    before = check()
    ledger.execute(
        ChangeOrganization(code=tree.base_b, effective_on="2024-07-01", parent_code=tree.city)
    )
    rm.catch_up()
    after = check()
    assert moves == [] and len(after) < len(before)
    assert {r[1] for r in before} - {r[1] for r in after} == {tree.base_b}


def test_a_read_behind_the_kept_anchors_neither_uses_nor_replaces_them(roll_history, monkeypatch):
    """Another read may keep a roll's anchors at a newer version than this read's snapshot:
    this read then pages by counting, and leaves the newer anchors kept."""
    _, tree, rm, _ = roll_history
    monkeypatch.setattr(rolls, "ANCHOR_STRIDE", 2)
    monkeypatch.setattr(rolls, "ANCHOR_MIN_ROWS", 1)
    query = dict(as_of=D(2024, 12, 31), known_at=None, scope="self", status=None)
    expected = _expected(rm, tree.base_a, **query)
    for _ in range(2):
        assert _paged(rm, tree.base_a, page_size=3, **query)[0] == expected
    ((key, kept),) = rm.rolls.anchors._rolls.items()
    newer = dataclasses.replace(kept, version=(kept.version[0] + 1, kept.version[1]))
    rm.rolls.anchors.put(key, newer)
    computed = []
    compute = rm.rolls._computed
    monkeypatch.setattr(rm.rolls, "_computed", lambda *a: computed.append(1) or compute(*a))
    assert _paged(rm, tree.base_a, page_size=3, **query)[0] == expected
    assert computed == [] and rm.rolls.anchors.latest(key) is newer


def test_an_existing_database_gets_the_declared_roll_index(ledger):
    rm = ReadModels(ledger)
    store = rm.store
    declared = TABLES_BY_NAME["roll_spans"].indexes
    table = LIVE.table("roll_spans")
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            # As an earlier version left it: another index in place of the declared one.
            for name in LIVE._secondary_indexes(store, cur, table):
                cur.execute(f"DROP INDEX {name}")
            cur.execute(
                f"CREATE INDEX {table}_i0_old ON {table} (organization_code, joined_on, member_id)"
            )
    finally:
        conn.close()
    ensure_live(store)
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            found = LIVE._secondary_indexes(store, cur, table)
    finally:
        conn.close()
    assert sorted(found.values()) == sorted(declared)
    ensure_live(store)  # idempotent
    rm.close()


def _summary_by_members(rm, code, *, as_of, known_at, scope):
    """A roll summary's counts by their definition, worked out in Python from every roll span
    and every version of the members' details."""
    d, k = day_int(as_of), known_us(known_at)
    with rm.store.reader() as cur:
        codes = _codes_in_scope(rm, cur, code, scope, d, k)
        cur.execute(
            "SELECT member_id, organization_code, status, sex, valid_from, valid_to,"
            " opened_at_us, closed_at_us FROM rm_roll_spans"
        )
        spans = cur.fetchall()
        cur.execute(
            "SELECT member_id, recorded_at_us, superseded_at_us, migrant_worker,"
            " new_employment_form FROM rm_member_details"
        )
        versions = cur.fetchall()
    known = {
        v[0]: v
        for v in versions
        if v[1] <= k and (v[2] is None or v[2] > k)  # the details as known at k
    }
    counts = dict(members=0, retained=0, women=0, migrant_workers=0, new_employment_form=0)
    for member, org, status, sex, start, end, opened, closed in spans:
        on_roll = opened <= k and start <= d and (closed is None or closed > k or end > d)
        if org not in codes or not on_roll or member not in known:
            continue
        counts["members"] += 1
        counts["retained"] += status == "retained"
        counts["women"] += sex == "female"
        counts["migrant_workers"] += known[member][3]
        counts["new_employment_form"] += known[member][4]
    return counts


def test_roll_summary_equals_the_count_over_its_members(roll_history):
    """The summary reads the counts the projector keeps per union (roll_counts.py); they
    equal the count over the members for every day, moment and scope, through corrections
    of the flags and a rejoin with other flags, which change the counts of past spans."""
    ledger, tree, rm, moments = roll_history
    with rm.store.reader() as cur:
        cur.execute("SELECT member_id FROM rm_roll_spans WHERE status = 'active' LIMIT 3")
        correct = [r[0] for r in cur.fetchall()]
    for n, m in enumerate(correct):
        ledger.execute(
            CorrectMember(member_id=m, changes={"migrant_worker": True}, note="更正"),
        )
        if n == 0:
            ledger.execute(
                CorrectMember(member_id=m, changes={"new_employment_form": True}, note="更正")
            )
    moments.append(_moment())
    ledger.execute(CorrectMember(member_id=correct[1], changes={"migrant_worker": False}, note="x"))
    # A member who left rejoins with other flags: the old span's counts follow the new ones.
    left = ledger.execute(
        JoinMember(
            id_number=person(41),
            name="会员41",
            organization_code=tree.base_b,
            joined_on="2024-02-01",
        )
    ).body["member_id"]
    ledger.execute(
        ExitMember(member_id=left, effective_on="2024-03-01", change_code=6, reason_code=5)
    )
    moments.append(_moment())
    ledger.execute(
        JoinMember(
            id_number=person(41),
            name="会员41",
            organization_code=tree.base_a,
            joined_on="2024-04-01",
            migrant_worker=True,
            new_employment_form=True,
        )
    )
    rm.catch_up()
    moments.append(_moment())
    keys = ("members", "retained", "women", "migrant_workers", "new_employment_form")
    nonzero = 0
    for code, scope in (
        (tree.base_a, "self"),
        (tree.base_b, "self"),
        (tree.county, "subtree"),
    ):
        for as_of in (D(2024, 1, 9), D(2024, 2, 15), D(2024, 3, 1), D(2024, 5, 5), D(2025, 1, 1)):
            for known_at in (None, *moments):
                query = dict(as_of=as_of, known_at=known_at, scope=scope)
                expected = _summary_by_members(rm, code, **query)
                found = rm.roll_summary(code, **query)
                assert {key: found[key] for key in keys} == expected, (code, query)
                nonzero += bool(expected["migrant_workers"])
    assert nonzero > 10


def test_a_subtree_read_asks_once_whether_the_tree_is_settled(roll_history, monkeypatch):
    """A roll page and a roll summary over a subtree ask whether the tree is settled for
    their subtree's listing and for their counts: one query serves both."""
    _, tree, rm, _ = roll_history
    asked = []
    settled = rm.rolls._tree_settled
    monkeypatch.setattr(
        rm.rolls, "_tree_settled", lambda cur, day: asked.append(day) or settled(cur, day)
    )
    rm.roll(tree.province, as_of=D(2024, 6, 30), scope="subtree", page_size=5)
    assert asked == [20240630]
    asked.clear()
    summary = rm.roll_summary(tree.province, as_of=D(2024, 6, 30), scope="subtree")
    assert asked == [20240630] and summary["members"] > 0


def test_a_subtree_listing_is_kept_until_the_tree_changes(roll_history, monkeypatch):
    """The pages of a subtree's roll list the subtree once while the tree stands; a union
    founded in it, or moved out of it, is seen at once, and a past day or moment keeps its
    own listing. Each roll is checked against the roll worked out from every span."""
    ledger, tree, rm, moments = roll_history
    listings = []
    listed = scope_module.subtree_listed
    monkeypatch.setattr(
        scope_module, "subtree_listed", lambda *a: listings.append(a[3]) or listed(*a)
    )

    def check(as_of, known_at=None):
        query = {"as_of": as_of, "known_at": known_at, "scope": "subtree"}
        found = rm.roll(tree.county, page_size=1000, **query)
        rows = [(i["member_id"], i["organization_code"]) for i in found["items"]]
        expected = _expected(rm, tree.county, status=None, **query)
        assert rows == [(r[0], r[1]) for r in expected], query
        return {r[1] for r in rows}

    year_end, mid_year = D(2024, 12, 31), D(2024, 6, 30)
    assert check(year_end) == {tree.base_a, tree.base_b, tree.base_c}
    assert check(year_end) and rm.roll_summary(tree.county, as_of=year_end, scope="subtree")
    assert listings == [tree.county]  # listed once for two pages and a summary

    base_d = org_code(8, base=True)
    ledger.execute(base_union(8, tree.township, "2024-01-02"))
    ledger.execute(
        JoinMember(
            id_number=person(40), name="会员40", organization_code=base_d, joined_on="2024-03-01"
        )
    )
    rm.catch_up()
    assert base_d in check(year_end) and len(listings) == 2
    # As known before the union was founded: a listing of its own, without it.
    assert base_d not in check(year_end, known_at=moments[-1]) and len(listings) == 3

    ledger.execute(
        ChangeOrganization(code=tree.base_b, effective_on="2024-07-01", parent_code=tree.city)
    )
    rm.catch_up()
    assert tree.base_b not in check(year_end) and len(listings) == 4
    assert tree.base_b in check(mid_year) and len(listings) == 5
    check(mid_year)
    assert len(listings) == 5


@pytest.mark.parametrize("kind", BACKENDS)
@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(10, 60),
    stride=st.integers(1, 3),
    gap=st.integers(2, 8),
)
def test_moved_anchors_page_the_roll_through_random_histories(
    tmp_path_factory, kind, seed, steps, stride, gap
):
    """Random histories (joins on random days, transfers, retentions, exits, corrections,
    moves of the tree), read models caught up in random steps, and rolls paged at each: kept
    anchors, moved from version to version or computed again, give exactly the roll."""
    with (
        random_history(kind, tmp_path_factory.mktemp("anchors"), seed) as (_, rm, writer, rng),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(rolls, "ANCHOR_STRIDE", stride)
        patch.setattr(rolls, "ANCHOR_MIN_ROWS", 1)
        patch.setattr(rolls, "ANCHOR_MAX_GAP", gap)

        def disagree(*args):  # moved anchors whose total is not the counted one
            raise AssertionError(args)

        patch.setattr(rolls.log, "warning", disagree)
        tree = writer.tree
        days = [D(2023, 6, 30), D(2024, 12, 31), D(2030, 1, 1)]
        # The same rolls at every version, so that their anchors are moved from one to the next.
        queries = [
            (code, dict(as_of=rng.choice(days), known_at=None, scope=scope, status=status))
            for code, scope, status in (
                (tree.county, "subtree", None),
                (tree.county, "subtree", "active"),
                # base_b moves in and out of the township's subtree.
                (tree.township, "subtree", None),
                (tree.base_a, "self", rng.choice([None, "active"])),
            )
        ]
        rm.catch_up()  # the tree
        for i in range(steps):
            writer.step()
            if i == steps // 2:  # and one as known at a moment, which later writes leave as it is
                queries.append((tree.county, {**queries[0][1], "known_at": _moment()}))
            if rng.random() < 0.3:
                continue
            rm.catch_up(max_events=rng.randint(1, 30))
            for code, query in queries:
                expected = _expected(rm, code, **query)
                rows, total = _paged(rm, code, page_size=rng.randint(1, 3), **query)
                assert total == len(expected)
                assert rows == expected, (code, query)
