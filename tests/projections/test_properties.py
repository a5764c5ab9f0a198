"""Properties of the read side over random histories, on both stores:

- read models maintained incrementally (catch-ups of random sizes between commands) equal a
  full rebuild row for row;
- every statement balances, at any date;
- a subtree's statement and roll summary equal the sums over its organisations, and read
  from the subtree sums they equal the same read walking the tree;
- "as known at" any past moment equals a rebuild of only the events recorded by then.
"""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.accounts import ACCOUNTS
from projections.read_models.models import ReadModels
from projections.read_models.rows import KNOWN_NOW_US, day_int, from_micros
from projections.read_models.schema import TableSet
from projections.read_models.scope import subtree_codes, subtree_listed, tree_settled
from projections.reconciliation.rebuild import build
from tests.conftest import BACKENDS, Backend
from tests.projections.helpers import (
    assert_equal_to_rebuild,
    assert_subtree_reads_agree,
    tree_settled_on,
)
from tests.projections.history import PROPERTY_SETTINGS, HistoryWriter, random_history

KNOWN = TableSet("rm_known_")
DATES = [
    datetime.date(2023, 3, 31),
    datetime.date(2023, 9, 30),
    datetime.date(2024, 6, 30),
    datetime.date(2030, 1, 1),
]
FAR = datetime.date(2099, 12, 31)
EARLY = datetime.date(2000, 1, 1)


def _sum_lines(bodies: list[dict], column: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for body in bodies:
        for line in body["lines"]:
            totals[line["account_code"]] = totals.get(line["account_code"], Decimal(0)) + Decimal(
                line[column]
            )
    return totals


def _lines(body: dict, column: str) -> dict[str, Decimal]:
    return {line["account_code"]: Decimal(line[column]) for line in body["lines"]}


def _org_codes(rm: ReadModels, root: str, day: datetime.date) -> list[str]:
    with rm.store.reader() as cur:
        return subtree_codes(
            rm.store, cur, rm.tables, root, day.year * 10_000 + day.month * 100 + day.day, 2**62
        )


def _check_statements(rm: ReadModels, writer: HistoryWriter) -> None:
    root = writer.tree.province
    for day in DATES:
        codes = _org_codes(rm, root, day)
        assert len(codes) == 7
        per_org = [rm.balance_sheet(c, as_of=day) for c in codes]
        for body in per_org:
            assert body["balanced"], body["totals"]
        whole = rm.balance_sheet(root, as_of=day, scope="subtree")
        assert whole["balanced"]
        assert _lines(whole, "amount") == _sum_lines(per_org, "amount")
        flows = [rm.income_expenditure(c, date_from=EARLY, date_to=day) for c in codes]
        flows_whole = rm.income_expenditure(root, date_from=EARLY, date_to=day, scope="subtree")
        for column in ("earmarked", "general", "amount"):
            assert _lines(flows_whole, column) == _sum_lines(flows, column)
        trial = rm.trial_balance(
            root, date_from=datetime.date(day.year, 1, 1), date_to=day, scope="subtree"
        )
        assert trial["balanced"], trial["totals"]
        summaries = [rm.roll_summary(c, as_of=day) for c in codes]
        summary = rm.roll_summary(root, as_of=day, scope="subtree")
        for key in (
            "members",
            "retained",
            "women",
            "migrant_workers",
            "new_employment_form",
            "employees",
        ):
            assert summary[key] == sum(s[key] for s in summaries), key
        roll = rm.roll(root, as_of=day, scope="subtree", page_size=1000)
        assert roll["total"] == summary["members"] == len(roll["items"])
        # One membership per person at any date.
        assert len({item["id_number"] for item in roll["items"]}) == roll["total"]


def _check_subtree_sums(rm: ReadModels, writer: HistoryWriter) -> None:
    """Where the tree has not changed since the day, statements and roll counts over a
    subtree read its root's subtree_sums and subtree_roll_totals: the same figures as walking
    the tree and summing every union."""
    tree = writer.tree
    settled = [day for day in [*DATES, FAR] if tree_settled_on(rm, day)]
    assert FAR in settled
    for root in (tree.province, tree.county, tree.township):
        for day in settled:
            assert_subtree_reads_agree(rm, root, day)


def _check_against_write_side(rm: ReadModels, writer: HistoryWriter) -> None:
    """The read models agree with the aggregates: each book's balances and each member's
    current status and union (an oracle that shares no code with the projector)."""
    ledger = writer.ledger
    for code in _org_codes(rm, writer.tree.province, FAR):
        book = ledger.get_book(code)
        expected: dict[str, int] = {}
        for acct, fen in (book.balances if book else {}).items():
            normal = fen if ACCOUNTS[acct].kind.debit_normal else -fen
            for target in (acct, ACCOUNTS[acct].parent):
                if target is not None:
                    expected[target] = expected.get(target, 0) + normal
        trial = rm.trial_balance(code, date_from=EARLY, date_to=FAR)
        got = {line["account_code"]: Decimal(line["closing"]) for line in trial["lines"]}
        assert got == {a: Decimal(expected.get(a, 0)) / 100 for a in got}, code
    for day in sorted(writer.change_days()):
        for shifted in (day - datetime.timedelta(days=1), day):
            roll = rm.roll(writer.tree.province, as_of=shifted, scope="subtree", page_size=1000)
            got = {i["member_id"]: (i["organization_code"], i["status"]) for i in roll["items"]}
            assert got == writer.expected_roll(shifted), shifted
    tree = writer.tree
    for moved_on, _ in writer.moves:
        for day in (moved_on - datetime.timedelta(days=1), moved_on):
            expected = {tree.township, tree.base_c}
            if writer.parent_of_base_b(day) == tree.township:
                expected.add(tree.base_b)
            assert set(_org_codes(rm, tree.township, day)) == expected, day
            # The roll's listing, from org_ancestors when the day is settled, agrees.
            d = day_int(day)
            with rm.store.reader() as cur:
                listed = subtree_listed(
                    rm.store,
                    cur,
                    rm.tables,
                    tree.township,
                    d,
                    KNOWN_NOW_US,
                    lambda cur=cur, d=d: tree_settled(rm.store, cur, rm.tables, d),
                )
            assert listed == {"codes": sorted(expected)}, day
            roll = rm.roll(tree.township, as_of=day, scope="subtree", page_size=1000)
            got = {i["member_id"]: (i["organization_code"], i["status"]) for i in roll["items"]}
            on_rolls = writer.expected_roll(day)
            assert got == {m: v for m, v in on_rolls.items() if v[0] in expected}, day
    roll = rm.roll(writer.tree.province, as_of=FAR, scope="subtree", page_size=1000)
    on_roll = {item["member_id"]: item for item in roll["items"]}
    current = [ledger.get_member(m) for m in writer.members.values()]
    assert len(on_roll) == sum(1 for m in current if m["status"] != "left")
    for member in current:
        if member["status"] == "left":
            assert member["member_id"] not in on_roll
            continue
        item = on_roll[member["member_id"]]
        for key in (
            "status",
            "organization_code",
            "name",
            "mobile",
            "id_number",
            "migrant_worker",
            "new_employment_form",
            "joined_on",
            "sex",
        ):
            assert item[key] == member[key], key


def _views(rm: ReadModels, root: str, known_at: datetime.datetime | None) -> list:
    views = []
    for day in DATES:
        views.append(rm.balance_sheet(root, as_of=day, known_at=known_at, scope="subtree"))
        views.append(rm.roll(root, as_of=day, known_at=known_at, scope="subtree", page_size=1000))
        views.append(rm.roll_summary(root, as_of=day, known_at=known_at, scope="subtree"))
    views.append(
        rm.income_expenditure(
            root, date_from=EARLY, date_to=FAR, known_at=known_at, scope="subtree"
        )
    )
    views.append(
        rm.trial_balance(
            root,
            date_from=datetime.date(2023, 6, 1),
            date_to=FAR,
            known_at=known_at,
            scope="subtree",
        )
    )
    views.append(
        rm.journal(
            root, date_from=EARLY, date_to=FAR, known_at=known_at, scope="subtree", page_size=1000
        )
    )
    views.append(
        rm.roll_changes(
            root, date_from=EARLY, date_to=FAR, known_at=known_at, scope="subtree", page_size=1000
        )
    )
    return views


def _check_known_at(
    backend: Backend, rm: ReadModels, writer: HistoryWriter, rng: random.Random
) -> None:
    with rm.store.reader() as cur:
        cur.execute(
            "SELECT DISTINCT recorded_at_us FROM rm_ledger_lines UNION "
            "SELECT recorded_at_us FROM rm_roll_changes UNION "
            "SELECT recorded_at_us FROM rm_org_parents"
        )
        moments = sorted(r[0] for r in cur.fetchall())
    for moment_us in rng.sample(moments, min(3, len(moments))):
        known_at = datetime.datetime.fromisoformat(from_micros(moment_us))
        build(rm.store, rm.projector, KNOWN, until_us=moment_us)
        as_known = ReadModels(rm.ledger, tables=KNOWN)
        try:
            expected = _views(as_known, writer.tree.province, None)
        finally:
            as_known.close()
        # The same figures and positions; only the answer as known at a moment says so.
        found = _views(rm, writer.tree.province, known_at)
        for view in found:
            if "position" in view:
                assert view.pop("known_at") == known_at.isoformat()
        assert found == expected


@pytest.mark.parametrize("kind", BACKENDS)
@PROPERTY_SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(5, 80),
    catch_up_every=st.integers(1, 15),
    batch=st.integers(1, 40),
)
def test_incremental_equals_rebuild_and_statements_hold(
    tmp_path_factory, kind, seed, steps, catch_up_every, batch
):
    with random_history(kind, tmp_path_factory.mktemp("property"), seed) as (
        backend,
        rm,
        writer,
        rng,
    ):
        for i in range(steps):
            writer.step()
            if i % catch_up_every == 0:
                rm.catch_up(max_events=rng.randint(1, 50), batch_events=batch)
        rm.catch_up(batch_events=batch)
        assert rm.lag() == 0
        assert_equal_to_rebuild(rm)
        _check_statements(rm, writer)
        _check_subtree_sums(rm, writer)
        _check_against_write_side(rm, writer)
        _check_known_at(backend, rm, writer, rng)
