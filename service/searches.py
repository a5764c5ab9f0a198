"""Member searches (会员查询), limited per token and recorded.

A search by identity number answers whether a person is a member: asked often enough, it would
map who belongs to a union. So each token may search a limited number of times a minute, and
every search is recorded as an event that auditors read in the audit stream: the token (the
event's actor), when (its timestamp), and the member id it was answered with (the keyed id, never
the identity number), or none when nothing was found (which is also the answer for a member
outside the token's scope: the record, like the answer, tells the two apart nowhere).

The count lives in the store, not in a process: one SearchWindow aggregate per token and
minute, whose id derives from both. Searches of one window from any number of processes append
to the same stream, so the store's (id, version) constraint makes the limit exact: a search
decided on a stale count fails to save and is decided again on the fresh one.
"""

from __future__ import annotations

import datetime
import math
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import SearchLimitReached
from service.unit_of_work import CommandResult, UnitOfWork
from storage import clock

WINDOW_S = 60


def window_start(moment: datetime.datetime) -> datetime.datetime:
    """The UTC minute a moment falls in."""
    return moment.astimezone(datetime.UTC).replace(second=0, microsecond=0)


@stable_topic("ledger:SearchWindow")
class SearchWindow(LedgerAggregate):
    """查询记录: one token's member searches in one minute."""

    @staticmethod
    def id_for(token_id: str, start: datetime.datetime) -> UUID:
        return stable_id("search-window", f"{token_id}\x00{start.isoformat()}")

    @event("Opened", topic="ledger:SearchWindow.Opened")
    def __init__(self, id: UUID, token_id: str, starts_at: datetime.datetime) -> None:
        self.token_id = token_id
        self.starts_at = starts_at
        self.searches = 0

    def search(self, *, member_id: str | None, organization_code: str | None, limit: int,
               at: datetime.datetime) -> None:
        """Records one search, or refuses it once the window holds `limit` of them."""
        if self.searches >= limit:
            ends_at = self.starts_at + datetime.timedelta(seconds=WINDOW_S)
            raise SearchLimitReached(
                f"this token may search for members {limit} times a minute; try again later",
                retry_after_s=math.ceil((ends_at - at).total_seconds()),
            )
        self._searched(member_id=member_id, organization_code=organization_code)

    @event("Searched", topic="ledger:SearchWindow.Searched")
    def _searched(self, member_id: str | None, organization_code: str | None) -> None:
        # organization_code: the found member's union, so that an auditor scoped to it sees
        # the search in the audit stream (GET /v1/audit/events?organization_code=...).
        self.searches += 1


def record_search(ledger: Any, *, token_id: str, actor: str, member_id: str | None,
                  organization_code: str | None, limit: int,
                  now: datetime.datetime | None = None) -> CommandResult:
    """Records one search by the token through the ledger's command runner (conflicts are
    decided again); SearchLimitReached past `limit` searches in the current minute."""
    at = now or clock.now()
    start = window_start(at)
    window_id = SearchWindow.id_for(token_id, start)
    request = {"token_id": token_id, "window": start.isoformat(), "member_id": member_id}

    def decide(uow: UnitOfWork) -> dict[str, Any]:
        window = uow.get(window_id)
        if window is None:
            window = SearchWindow(id=window_id, token_id=token_id, starts_at=start)
            uow.add(window)
        window.search(member_id=member_id, organization_code=organization_code, limit=limit,
                      at=at)
        return {"searches": window.searches}

    return ledger._run("record_search", request, None, actor, decide, may_create=(window_id,))
