"""Ledger.stored_ids: which aggregates exist, in one query, on both stores."""

from __future__ import annotations

import uuid

from domain.base import acting_as
from domain.idempotency import IdempotencyRecord
from tests.conftest import Backend


def test_stored_ids_names_exactly_the_stored_aggregates(backend: Backend) -> None:
    ledger = backend.open()
    stored = {uuid.uuid4() for _ in range(5)}
    with acting_as("test"):
        ledger.save(
            *(
                IdempotencyRecord(id=i, command="c", fingerprint="f", result={}, event_keys=[])
                for i in stored
            )
        )
    absent = {uuid.uuid4() for _ in range(1_200)}  # more than one import chunk's worth
    assert ledger.stored_ids(stored | absent) == stored
    assert ledger.stored_ids(absent) == set()
    assert ledger.stored_ids(set()) == set()
