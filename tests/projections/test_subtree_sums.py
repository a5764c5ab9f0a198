"""The subtree sums (projections/read_models/subtree_sums.py) through the year-end close and
its reversal, kept batch by batch: equal to a rebuild, and reading from them equals walking
the tree, on both stores."""

from __future__ import annotations

import datetime

import pytest

from service.commands import ClosePeriod, RecordDues, RecordExpense, ReopenPeriod
from tests.conftest import BACKENDS
from tests.projections.helpers import (
    assert_equal_to_rebuild,
    assert_subtree_reads_agree,
    tree_settled_on,
)
from tests.projections.history import random_history

YEAR_END = datetime.date(2023, 12, 31)


def _closing_rows(rm, code: str) -> dict[tuple[str, int], tuple[int, int]]:
    with rm.store.reader() as cur:
        cur.execute(
            rm.store.sql(
                "SELECT account_code, earmarked, debit_fen, credit_fen FROM rm_subtree_sums"
                " WHERE organization_code = ? AND months = 0 AND period = 20231231"
            ),
            (code,),
        )
        return {(a, e): (d, c) for a, e, d, c in cur.fetchall() if (d, c) != (0, 0)}


@pytest.mark.parametrize("kind", BACKENDS)
def test_the_year_end_close_and_its_reversal_reach_every_ancestor(tmp_path, kind):
    with random_history(kind, tmp_path, seed=7) as (_, rm, writer, _rng):
        tree, ledger = writer.tree, writer.ledger

        def run(command) -> dict:
            body = ledger.execute(command).body
            rm.catch_up(batch_events=2)  # small batches: the path a live server takes
            return body

        run(
            RecordDues(
                organization_code=tree.base_a,
                period="2023-01",
                amount="1000.00",
                received_on="2023-01-20",
            )
        )
        for month, amount in ((3, "120.50"), (8, "80.00")):
            run(
                RecordExpense(
                    organization_code=tree.base_a,
                    account_code="501",
                    amount=amount,
                    earmarked=False,
                    description="活动",
                    paid_on=f"2023-{month:02d}-10",
                )
            )
        for month in range(1, 13):
            closed = run(ClosePeriod(organization_code=tree.base_a, period=f"2023-{month:02d}"))
        assert closed["year_end_voucher_id"]
        # Reopening December reverses the close on 31 December; closing it again posts anew.
        assert run(ReopenPeriod(organization_code=tree.base_a, period="2023-12", reason="更正"))[
            "year_end_reversal_id"
        ]
        assert run(ClosePeriod(organization_code=tree.base_a, period="2023-12"))[
            "year_end_voucher_id"
        ]

        # One close in effect: 501's 200.50 moved out of expenditure on 31 December.
        ancestors = [tree.province, tree.county]
        for code in ancestors:
            assert _closing_rows(rm, code)[("501", 0)] == (0, 20050), code
        statement = rm.income_expenditure(
            tree.province, date_from=datetime.date(2023, 1, 1), date_to=YEAR_END, scope="subtree"
        )
        line = next(x for x in statement["lines"] if x["account_code"] == "501")
        assert line["general"] == "200.50"  # 02表 leaves the close out
        assert tree_settled_on(rm, YEAR_END)
        for code in ancestors:
            assert_subtree_reads_agree(rm, code, YEAR_END)
        assert_equal_to_rebuild(rm)
