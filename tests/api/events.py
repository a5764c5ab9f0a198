"""Reading stored events back in tests (decrypted by the ledger's own mapper)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from service.application import Ledger


def events_after(ledger: Ledger, position: int) -> list[Any]:
    notifications = ledger.recorder.select_notifications(start=position + 1, limit=10_000)
    return [ledger.mapper.to_domain_event(n) for n in notifications]


def actor_of(token: str) -> str:
    return f"token:{UUID(hex=token.partition('.')[0])}"
