"""Member searches: limited per token and minute in the store (exact across processes), and each
one recorded with the member id found, never the identity number."""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.access import SearchWindow, window_start
from domain.errors import SearchLimitReached
from service.commands import RecordSearch
from tests.api.events import events_after
from tests.conftest import Backend

NOW = datetime.datetime(2026, 12, 3, 9, 30, 45, 250_000, tzinfo=datetime.UTC)
TOKEN = "5b0e7c1e-9d7c-4a55-8f35-2f8f1f3a0c11"
LIMIT = 60


def search(
    ledger,
    *,
    at: datetime.datetime = NOW,
    member_id: str | None = None,
    limit: int = LIMIT,
    token_id: str = TOKEN,
    pii_read_purpose: str | None = None,
):
    return ledger.execute(
        RecordSearch(
            token_id=token_id,
            window_start=window_start(at),
            at=at,
            member_id=member_id,
            organization_code=None,
            limit=limit,
            pii_read_purpose=pii_read_purpose,
        ),
        actor=f"token:{token_id}",
    )


def test_the_search_past_the_limit_is_refused_until_the_next_minute(backend: Backend) -> None:
    ledger = backend.open()
    for n in range(LIMIT):
        assert search(ledger, at=NOW + datetime.timedelta(seconds=n % 10)).body == {
            "searches": n + 1
        }
    head = ledger.head_position()
    with pytest.raises(SearchLimitReached) as refused:
        search(ledger)
    # 09:30:45.25: the window ends at 09:31:00, in 14.75 s, so 15 whole seconds.
    assert refused.value.retry_after_s == 15
    assert ledger.head_position() == head  # a refused search records nothing
    # Another token has its own allowance; the next minute is a new window.
    assert search(ledger, token_id="another").body == {"searches": 1}
    assert search(ledger, at=NOW + datetime.timedelta(seconds=15)).body == {"searches": 1}


def test_the_limit_is_exact_across_processes(backend: Backend) -> None:
    """Two ledgers on one store (two server processes), eight threads each: exactly the limit
    is let through, whatever interleaving the writers meet."""
    ledgers = [backend.open(), backend.open()]

    def attempt(n: int) -> str:
        try:
            search(ledgers[n % 2], limit=25)
        except SearchLimitReached:
            return "refused"
        return "recorded"

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    assert outcomes.count("recorded") == 25 and outcomes.count("refused") == 15
    window = ledgers[0].repository.get(SearchWindow.id_for(TOKEN, window_start(NOW)))
    assert window.searches == 25
    assert window.version == 26  # opened, then 25 searches


def test_each_search_is_recorded_by_member_id(backend: Backend) -> None:
    ledger = backend.open()
    search(ledger, member_id="0f8e3c4a-1111-4222-8333-944455556666")
    search(ledger)
    events = list(ledger.repository.event_store.get(SearchWindow.id_for(TOKEN, window_start(NOW))))
    assert [type(e).__qualname__ for e in events] == [
        "SearchWindow.Opened",
        "SearchWindow.Searched",
        "SearchWindow.Searched",
    ]
    assert {e.actor for e in events} == {f"token:{TOKEN}"}
    assert [e.member_id for e in events[1:]] == ["0f8e3c4a-1111-4222-8333-944455556666", None]


def test_an_unmasked_answer_is_recorded_with_its_search_or_not_at_all(backend: Backend) -> None:
    """A pii token's search records the unmasked read (PiiRead) in the search's own write: a
    search past the limit records neither, and a search that found nobody no read."""
    ledger = backend.open()
    member_id = "0f8e3c4a-1111-4222-8333-944455556666"
    purpose = "POST /v1/members/search"
    head = ledger.head_position()
    search(ledger, member_id=member_id, limit=2, pii_read_purpose=purpose)
    written = events_after(ledger, head)
    assert [type(e).__qualname__ for e in written] == [
        "SearchWindow.Opened",
        "SearchWindow.Searched",
        "PiiRead.Recorded",
    ]
    assert written[-1].purpose == purpose and written[-1].member_ids == [member_id]
    assert {e.actor for e in written} == {f"token:{TOKEN}"}
    head = ledger.head_position()
    search(ledger, limit=2, pii_read_purpose=purpose)  # nobody found: nothing was read
    assert [type(e).__qualname__ for e in events_after(ledger, head)] == ["SearchWindow.Searched"]
    head = ledger.head_position()
    with pytest.raises(SearchLimitReached):
        search(ledger, member_id=member_id, limit=2, pii_read_purpose=purpose)
    assert ledger.head_position() == head
