"""Idempotency for the few POSTs that are not one Ledger command (a roster import, a seal).

The same IdempotencyRecord as the ledger's commands keep, under the same (scope, key): the
first answer is stored, a retry with the same request replays it, another request under the
same key is refused. The record is written after the work, so work that is not idempotent by
itself must make its own steps idempotent (the import does, row by row).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from api.security import Caller
from domain.errors import IdempotencyKeyReused
from domain.idempotency import IdempotencyRecord
from service.commands import RecordOutcome
from service.idempotency import Fingerprint, IdempotencyKey


def _earlier(caller: Caller, key: IdempotencyKey, digest: Fingerprint) -> dict[str, Any] | None:
    try:
        record = caller.services.ledger.repository.get(key.record_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(record, IdempotencyRecord) or not digest.matches(record.fingerprint):
        raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
    return record.result


def run_once(
    caller: Caller,
    key: IdempotencyKey,
    command: str,
    request: dict[str, Any],
    work: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """(the answer, whether it is a replay)."""
    digest = caller.services.ledger.fingerprint(command, request)
    earlier = _earlier(caller, key, digest)
    if earlier is not None:
        return earlier, True
    answer = work()
    # Recorded by the writer like every command: a concurrent duplicate that finished first
    # is found there, and this answer becomes its replay.
    recorded = caller.services.ledger.execute(
        RecordOutcome(command=command, request_=request, result=answer),
        actor=caller.actor,
        idempotency=key,
    )
    return recorded.body, recorded.replayed
