"""Shared checks of the read-side tests."""

from __future__ import annotations

from projections.read_models.models import ReadModels
from projections.read_models.schema import LIVE, SHADOW, TableSet
from projections.reconciliation.compare import Comparison, compare
from projections.reconciliation.rebuild import build


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
