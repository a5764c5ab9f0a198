"""Reading stored events back in tests (decrypted by the ledger's own mapper)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from service.application import Ledger


def events_after(ledger: Ledger, position: int) -> list[Any]:
    return [event for _, event in positioned_events_after(ledger, position)]


def positioned_events_after(ledger: Ledger, position: int) -> list[tuple[int, Any]]:
    """(position, event) for every event stored after position."""
    notifications = ledger.recorder.select_notifications(start=position + 1, limit=10_000)
    return [(n.id, ledger.mapper.to_domain_event(n)) for n in notifications]


def actor_of(token: str) -> str:
    return f"token:{UUID(hex=token.partition('.')[0])}"
