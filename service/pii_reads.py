"""Unmasked reads of personal data (个人信息查阅记录): each one is itself an event.

The record names who read (the actor, as on every event), what they called, and whose data
they saw by member id only: the record must not become a second copy of the personal data.
"""

from __future__ import annotations

from eventsourcing.domain import event

from domain.base import LedgerAggregate, acting_as, stable_topic
from service.application import Ledger

MAX_MEMBER_IDS = 100_000


@stable_topic("ledger:PiiRead")
class PiiRead(LedgerAggregate):
    """个人信息查阅: one unmasked read by one caller."""

    @event("Recorded", topic="ledger:PiiRead.Recorded")
    def __init__(self, purpose: str, member_ids: list[str]) -> None:
        self.purpose = purpose
        self.member_ids = member_ids


def record_pii_read(ledger: Ledger, *, actor: str, purpose: str, member_ids: list[str]) -> int:
    """Stores the record and returns its position."""
    ids = sorted(set(member_ids))[:MAX_MEMBER_IDS]
    with acting_as(actor):
        read = PiiRead(purpose=purpose[:200], member_ids=ids)
        recordings = ledger.save(read)
    return max(r.notification.id for r in recordings)
