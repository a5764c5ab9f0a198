"""会员名册导入: many people joining unions, through the bulk write path (service/bulk_join.py).

Rows go in chunks of IMPORT_CHUNK_ROWS, each decided as the command JoinMembers would decide it
and kept under its own idempotency record (a key derived from the request's key and its row
numbers), so a retried import joins nobody twice. Chunks of about CHUNKS_PER_WRITE chunks' rows
make one transaction (of one union's roster, or of several unions' small rosters: the demo
loader's); while the writer writes one, this thread prepares the next (identity numbers,
member ids, the checks of each row, its event mapped to stored bytes).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from service.application import Ledger
from service.bulk_join import BulkWrite, PlannedChunk, plan_chunk, plan_write
from service.group_commit import ExclusiveWrite
from service.idempotency import IdempotencyKey
from service.unit_of_work import CommandResult
from storage import gc_pause

IMPORT_CHUNK_ROWS = 1000
# Rows of one transaction, in chunks: a COPY of this many rows' events costs a few times one
# commit (fsync), and the writer's last transaction is not overlapped with anything.
CHUNKS_PER_WRITE = 5
# Transactions of one import handed to the writer before the first of them is answered.
WRITES_IN_FLIGHT = 2
# Chunks of one import handed to the writer before the first of them is answered.
IMPORT_CHUNKS_IN_FLIGHT = CHUNKS_PER_WRITE * WRITES_IN_FLIGHT

Rows = list[tuple[int, dict[str, Any]]]


def _chunk_outcomes(result: CommandResult) -> list[dict[str, Any]]:
    return [
        {**outcome, "replayed": result.replayed, "position": result.position}
        if "member_id" in outcome
        else outcome
        for outcome in result.body["rows"]
    ]


def join_unions(
    ledger: Ledger,
    unions: Sequence[tuple[str, Rows]],
    *,
    actor: str = "system",
    idempotency: IdempotencyKey | None = None,
) -> list[list[dict[str, Any]]]:
    """入会 of many people into each of these unions ((code, rows) each): the outcomes of
    each union's rows, in order, as join_rows gives them."""
    outcomes: list[list[dict[str, Any]]] = [[] for _ in unions]
    in_flight: deque[tuple[list[int], Future[Any]]] = deque()
    planned: list[PlannedChunk] = []
    owners: list[int] = []  # the union of each planned chunk

    def collect() -> None:
        indices, future = in_flight.popleft()
        write: BulkWrite = future.result()
        for index, result in zip(indices, write.results, strict=False):
            outcomes[index] += _chunk_outcomes(result)
        if write.error is not None:
            raise write.error

    def hand_over() -> None:
        if len(in_flight) >= WRITES_IN_FLIGHT:
            collect()
        write = plan_write(ledger, planned[:], actor=actor)
        in_flight.append(
            (owners[:], ledger.committer.enqueue_exclusive(ExclusiveWrite(write.body)))
        )
        planned.clear()
        owners.clear()

    step = IMPORT_CHUNK_ROWS * CHUNKS_PER_WRITE
    # Automatic collection off while the rows go through (storage/gc_pause.py), the young
    # generations collected between transactions.
    with gc_pause.paused() as between_writes:
        try:
            for index, (code, rows) in enumerate(unions):
                if not rows:
                    continue
                org = ledger.unit_of_work().org(code, field="organization_code")
                for start in range(0, len(rows), IMPORT_CHUNK_ROWS):
                    part = rows[start : start + IMPORT_CHUNK_ROWS]
                    planned.append(
                        plan_chunk(ledger, org, part, actor=actor, idempotency=idempotency)
                    )
                    owners.append(index)
                    if sum(len(c.rows) for c in planned) >= step:
                        hand_over()
                        between_writes()
            if planned:
                hand_over()
            while in_flight:
                collect()
        except BaseException:
            # Transactions already handed over finish (each chunk under its own key) first.
            for _, future in in_flight:
                with contextlib.suppress(BaseException):
                    future.result()
            raise
    return outcomes


def join_rows(
    ledger: Ledger,
    *,
    organization_code: str,
    rows: Rows,
    actor: str = "system",
    idempotency: IdempotencyKey | None = None,
) -> list[dict[str, Any]]:
    """入会 of many people into one union. Each row is accepted or refused on its own; the
    outcome of each, in order: {row, member_id, replayed, position} or {row, field, reason}."""
    return join_unions(ledger, [(organization_code, rows)], actor=actor, idempotency=idempotency)[0]
