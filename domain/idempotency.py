"""The record of a request sent with an idempotency key: its first answer, kept so that a
retry with the same key answers the same and writes nothing.

Its id derives from (token scope, key), and it is saved in the same atomic write as the
command's own events: two racing duplicates cannot both succeed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_topic


@stable_topic("ledger:IdempotencyRecord")
class IdempotencyRecord(LedgerAggregate):
    """The first result of a command sent with an idempotency key."""

    @event("Recorded", topic="ledger:IdempotencyRecord.Recorded")
    def __init__(
        self,
        id: UUID,
        command: str,
        fingerprint: str,
        result: dict[str, Any],
        event_keys: list[str] | None = None,
    ) -> None:
        self.command = command
        self.fingerprint = fingerprint
        self.result = result
        # "<aggregate id hex>:<version>" of the command's other events: a replay answers with
        # the same position as the first response, the position of its last event.
        self.event_keys = event_keys or []
