"""compare_rows (projections/reconciliation/compare.py), the merge behind `ledger rebuild
--check`, reconciliation and the Spark job's check: for any two sets of rows, its counts, its
differing rows and its checksums are those of each side's rows taken on their own."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from projections.read_models.schema import Table
from projections.reconciliation.compare import Comparison, _digest, compare_rows

TABLE = Table(
    name="t",
    columns=(("org", "text"), ("k", "int"), ("v", "text"), ("blob", "bytea")),
    key=("org", "k"),
    org_column="org",
)
row_values = st.tuples(st.sampled_from(["x", "y"]), st.binary(max_size=3) | st.none())
sides = st.dictionaries(
    st.tuples(st.sampled_from(["A", "B", ""]), st.integers(0, 6)), row_values, max_size=12
)


def _rows(side: dict) -> list[tuple]:
    return [(org, k, v, blob) for (org, k), (v, blob) in sorted(side.items())]


def _checksums(rows: list[tuple]) -> tuple[str, dict[str, str]]:
    whole, per_org = hashlib.sha256(), defaultdict(hashlib.sha256)
    for row in rows:
        whole.update(_digest(row))
        per_org[row[0]].update(_digest(row))
    return whole.hexdigest(), {org: h.hexdigest() for org, h in per_org.items()}


@given(sides, sides, st.booleans())
def test_the_merge_gives_each_sides_own_counts_checksums_and_differences(
    live: dict, rebuilt: dict, same: bool
) -> None:
    if same:
        rebuilt = dict(live)  # a check that finds nothing: the common case, taken fast
    live_rows, rebuilt_rows = _rows(live), _rows(rebuilt)
    result = Comparison()
    summary = compare_rows(result, TABLE, TABLE.column_names, iter(live_rows), iter(rebuilt_rows))

    keys = set(live) | set(rebuilt)
    differing = {k for k in keys if live.get(k) != rebuilt.get(k)}
    assert (summary.rows_live, summary.rows_rebuilt) == (len(live_rows), len(rebuilt_rows))
    assert summary.differing_rows == len(differing)
    assert sorted((d["key"]["org"], d["key"]["k"]) for d in result.differences) == sorted(differing)
    live_sum, live_orgs = _checksums(live_rows)
    rebuilt_sum, rebuilt_orgs = _checksums(rebuilt_rows)
    assert (summary.checksum_live, summary.checksum_rebuilt) == (live_sum, rebuilt_sum)
    assert summary.equal == (live_rows == rebuilt_rows)
    empty = hashlib.sha256().hexdigest()
    assert result.organizations == {
        ("t", org): (live_orgs.get(org, empty), rebuilt_orgs.get(org, empty))
        for org in set(live_orgs) | set(rebuilt_orgs)
        if live_orgs.get(org, empty) != rebuilt_orgs.get(org, empty)
    }
