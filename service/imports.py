"""会员名册导入: many people joining one union, a chunk of rows per command.

Chunks are handed to the writer a few at a time: while it decides and writes one, this thread
prepares the next (identity numbers, member ids, the request's fingerprint), and chunks waiting
together are written in one transaction. Each chunk keeps its own idempotency record under a
key derived from the request's key and its row numbers, so a retried import joins nobody twice.
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future
from typing import Any

from service.application import Ledger
from service.commands import JoinMembers
from service.idempotency import IdempotencyKey
from service.unit_of_work import CommandResult

IMPORT_CHUNK_ROWS = 1000
# Chunks of one import handed to the writer before the first of them is answered.
IMPORT_CHUNKS_IN_FLIGHT = 4


def _chunk_outcomes(result: CommandResult) -> list[dict[str, Any]]:
    return [
        {**outcome, "replayed": result.replayed, "position": result.position}
        if "member_id" in outcome
        else outcome
        for outcome in result.body["rows"]
    ]


def join_rows(
    ledger: Ledger,
    *,
    organization_code: str,
    rows: list[tuple[int, dict[str, Any]]],
    actor: str = "system",
    idempotency: IdempotencyKey | None = None,
) -> list[dict[str, Any]]:
    """入会 of many people into one union, IMPORT_CHUNK_ROWS rows per command. Each row is
    accepted or refused on its own; the outcome of each, in order: {row, member_id, replayed,
    position} or {row, field, reason}."""
    outcomes: list[dict[str, Any]] = []
    in_flight: deque[Future[CommandResult]] = deque()
    try:
        for start in range(0, len(rows), IMPORT_CHUNK_ROWS):
            chunk = rows[start : start + IMPORT_CHUNK_ROWS]
            key = None
            if idempotency is not None:
                # \x00 never occurs in a client's key: a chunk's key cannot collide with one.
                key = IdempotencyKey(
                    idempotency.scope, f"{idempotency.key}\x00rows:{chunk[0][0]}-{chunk[-1][0]}"
                )
            if len(in_flight) >= IMPORT_CHUNKS_IN_FLIGHT:
                outcomes += _chunk_outcomes(in_flight.popleft().result())
            command = JoinMembers.prepare(ledger.member_ids, organization_code, chunk)
            in_flight.append(ledger.submit(command, actor=actor, idempotency=key))
        while in_flight:
            outcomes += _chunk_outcomes(in_flight.popleft().result())
    except BaseException:
        # Chunks already handed over finish (each under its own key) before this fails.
        for future in in_flight:
            with contextlib.suppress(BaseException):
                future.result()
        raise
    return outcomes
