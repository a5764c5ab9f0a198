"""Shared checks of the read-side tests."""

from __future__ import annotations

import datetime
from typing import Any

from domain.vouchers import Posting
from projections.read_models.models import ReadModels
from projections.read_models.rows import day_int
from projections.read_models.schema import LIVE, SHADOW, TABLES, TableSet
from projections.reconciliation.compare import Comparison, compare
from projections.reconciliation.rebuild import build
from storage.payload_codec import PostingRow


def live_rows(read_models: ReadModels) -> dict[str, list[tuple]]:
    """Every row of every live read-model table, per table, in a fixed order: for checking
    that a measurement over the read models left them as they were."""
    with read_models.store.reader() as cur:
        found = {}
        for table in TABLES:
            cur.execute(f"SELECT * FROM {LIVE.table(table.name)}")
            found[table.name] = sorted(map(tuple, cur.fetchall()), key=repr)
        return found


def compare_with_rebuild(read_models: ReadModels, *, live: TableSet = LIVE) -> Comparison:
    """Builds every read model afresh beside `live` (caught up first) and compares."""
    read_models.projector.catch_up(live)
    build(read_models.store, read_models.projector, SHADOW)
    conn = read_models.store.connect()
    try:
        with read_models.store.transaction(conn) as cur:
            comparison = compare(read_models.store, conn, live, SHADOW)
            SHADOW.drop(read_models.store, cur)
    finally:
        conn.close()
    return comparison


def assert_equal_to_rebuild(read_models: ReadModels) -> None:
    comparison = compare_with_rebuild(read_models)
    assert comparison.equal, comparison.as_dict()["differences"][:5]
    # Not vacuous: the tables hold the history.
    assert sum(t.rows_live for t in comparison.tables) > 0


def as_rows(value: Any) -> Any:
    """Domain values as the readers decode them: postings as PostingRow (fen as ints), inside
    lists and dicts too."""
    if isinstance(value, Posting):
        return PostingRow(
            value.organization_code,
            value.account_code,
            value.debit.fen,
            value.credit.fen,
            value.earmarked,
            value.counterparty,
        )
    if isinstance(value, list):
        return [as_rows(v) for v in value]
    if isinstance(value, dict):
        return {k: as_rows(v) for k, v in value.items()}
    return value


def tree_settled_on(rm: ReadModels, day: datetime.date) -> bool:
    """Whether subtree reads as of day (known now) are read from the subtree sums."""
    with rm.store.reader() as cur:
        return rm.statements._tree_settled(cur, day_int(day))


def _subtree_views(rm: ReadModels, root: str, day: datetime.date) -> list[dict]:
    early = day - datetime.timedelta(days=75)  # edge days at both ends, mostly
    return [
        rm.balance_sheet(root, as_of=day, scope="subtree"),
        rm.income_expenditure(
            root, date_from=datetime.date(2000, 1, 1), date_to=day, scope="subtree"
        ),
        rm.income_expenditure(root, date_from=early, date_to=day, scope="subtree"),
        rm.trial_balance(root, date_from=early, date_to=day, scope="subtree"),
        rm.roll_summary(root, as_of=day, scope="subtree"),
        rm.roll(root, as_of=day, scope="subtree", page_size=3),
        rm.roll(root, as_of=day, scope="subtree", status="retained", page_size=3),
    ]


def assert_subtree_reads_agree(rm: ReadModels, root: str, day: datetime.date) -> None:
    """Statements and roll counts over root's subtree as of day (whose tree must be
    settled) read from the subtree sums equal the same reads walking the tree."""
    by_root = _subtree_views(rm, root, day)
    for queries in (rm.statements, rm.rolls):
        queries._tree_settled = lambda cur, tree_day: False  # type: ignore[method-assign]
    try:
        walked = _subtree_views(rm, root, day)
    finally:
        del rm.statements._tree_settled, rm.rolls._tree_settled
    assert by_root == walked, (root, day)
