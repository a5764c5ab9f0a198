"""Shared checks of the read-side tests."""

from __future__ import annotations

from typing import Any

from domain.vouchers import Posting
from projections.read_models.models import ReadModels
from projections.read_models.schema import LIVE, SHADOW, TableSet
from projections.reconciliation.compare import Comparison, compare
from projections.reconciliation.rebuild import build
from storage.payload_codec import PostingRow


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
