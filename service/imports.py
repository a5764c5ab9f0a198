"""会员名册导入: many people joining one union, through the bulk write path (service/bulk_join.py).

Rows go in chunks of IMPORT_CHUNK_ROWS, each decided as the command JoinMembers would decide it
and kept under its own idempotency record (a key derived from the request's key and its row
numbers), so a retried import joins nobody twice. CHUNKS_PER_WRITE chunks make one transaction;
while the writer writes one, this thread prepares the next (identity numbers, member ids, the
checks of each row, its event mapped to stored bytes).
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future
from typing import Any

from service.application import Ledger
from service.bulk_join import BulkWrite, plan_write
from service.group_commit import ExclusiveWrite
from service.idempotency import IdempotencyKey
from service.unit_of_work import CommandResult

IMPORT_CHUNK_ROWS = 1000
# Chunks in one transaction: a COPY of this many rows' events costs a little more than one
# commit (fsync) of a few.
CHUNKS_PER_WRITE = 5
# Transactions of one import handed to the writer before the first of them is answered.
WRITES_IN_FLIGHT = 2
# Chunks of one import handed to the writer before the first of them is answered.
IMPORT_CHUNKS_IN_FLIGHT = CHUNKS_PER_WRITE * WRITES_IN_FLIGHT


def _chunk_outcomes(result: CommandResult) -> list[dict[str, Any]]:
    return [
        {**outcome, "replayed": result.replayed, "position": result.position}
        if "member_id" in outcome
        else outcome
        for outcome in result.body["rows"]
    ]


def _write_outcomes(future: Future[Any]) -> list[dict[str, Any]]:
    write: BulkWrite = future.result()
    outcomes = [o for result in write.results for o in _chunk_outcomes(result)]
    if write.error is not None:
        raise write.error
    return outcomes


def join_rows(
    ledger: Ledger,
    *,
    organization_code: str,
    rows: list[tuple[int, dict[str, Any]]],
    actor: str = "system",
    idempotency: IdempotencyKey | None = None,
) -> list[dict[str, Any]]:
    """入会 of many people into one union. Each row is accepted or refused on its own; the
    outcome of each, in order: {row, member_id, replayed, position} or {row, field, reason}."""
    if not rows:
        return []
    org = ledger.unit_of_work().org(organization_code, field="organization_code")
    outcomes: list[dict[str, Any]] = []
    in_flight: deque[Future[Any]] = deque()
    step = IMPORT_CHUNK_ROWS * CHUNKS_PER_WRITE
    try:
        for start in range(0, len(rows), step):
            if len(in_flight) >= WRITES_IN_FLIGHT:
                outcomes += _write_outcomes(in_flight.popleft())
            write = plan_write(
                ledger,
                org,
                rows[start : start + step],
                chunk_rows=IMPORT_CHUNK_ROWS,
                actor=actor,
                idempotency=idempotency,
            )
            in_flight.append(ledger.committer.enqueue_exclusive(ExclusiveWrite(write.body)))
        while in_flight:
            outcomes += _write_outcomes(in_flight.popleft())
    except BaseException:
        # Transactions already handed over finish (each chunk under its own key) first.
        for future in in_flight:
            with contextlib.suppress(BaseException):
                future.result()
        raise
    return outcomes
