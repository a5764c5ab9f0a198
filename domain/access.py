"""Access to the ledger and what it leaves behind: API tokens (访问令牌), member searches
(会员查询) limited per token and minute, and unmasked reads of personal data (个人信息查阅).

These are aggregates like any other: stored as events in the same store, encrypted by the same
cipher, shared by every server process, and listed in the audit stream.
"""

from __future__ import annotations

import datetime
import math
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import SearchLimitReached

DEFAULT_EXPIRY_DAYS = 365
MINTED_TOPIC = "ledger:Token.Minted"
SEARCH_WINDOW_S = 60
# A PiiRead names at most this many members (a roll export of a whole province fits).
MAX_READ_MEMBER_IDS = 100_000


@stable_topic("ledger:Token")
class Token(LedgerAggregate):
    """访问令牌: who may call the API, as what, over which organisations, until when."""

    class Minted(LedgerAggregate.Created):
        """Version 2 added expires_at. A token minted before tokens expired (version 1) expires
        DEFAULT_EXPIRY_DAYS after it was minted, like a new token minted with the default."""

        TOPIC = MINTED_TOPIC
        class_version = 2
        role: str
        organization_code: str | None
        pii: bool
        secret_hash: str
        expires_at: datetime.datetime

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["expires_at"] = state["timestamp"] + datetime.timedelta(days=DEFAULT_EXPIRY_DAYS)

    @event(Minted)
    def __init__(
        self,
        id: UUID,
        role: str,
        organization_code: str | None,
        pii: bool,
        secret_hash: str,
        expires_at: datetime.datetime,
    ) -> None:
        self.role = role
        self.organization_code = organization_code
        self.pii = pii
        self.secret_hash = secret_hash
        self.expires_at = expires_at
        self.revoked_at: datetime.datetime | None = None

    def revoke(self, at: datetime.datetime) -> bool:
        """Revokes the token; False (and nothing recorded) if it was revoked already."""
        if self.revoked_at is not None:
            return False
        self._revoked(revoked_at=at)
        return True

    @event("Revoked", topic="ledger:Token.Revoked")
    def _revoked(self, revoked_at: datetime.datetime) -> None:
        self.revoked_at = revoked_at

    def valid_at(self, moment: datetime.datetime) -> bool:
        return self.revoked_at is None and moment < self.expires_at


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

    def search(
        self,
        *,
        member_id: str | None,
        organization_code: str | None,
        limit: int,
        at: datetime.datetime,
    ) -> None:
        """Records one search, or refuses it once the window holds `limit` of them."""
        if self.searches >= limit:
            ends_at = self.starts_at + datetime.timedelta(seconds=SEARCH_WINDOW_S)
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


@stable_topic("ledger:PiiRead")
class PiiRead(LedgerAggregate):
    """个人信息查阅: one unmasked read by one caller."""

    @event("Recorded", topic="ledger:PiiRead.Recorded")
    def __init__(self, purpose: str, member_ids: list[str]) -> None:
        self.purpose = purpose
        self.member_ids = member_ids
