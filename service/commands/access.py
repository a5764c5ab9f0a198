"""Commands that record access rather than change the books: tokens minted and revoked,
member searches counted, unmasked reads recorded, and the first answer of a request that is
not itself a command (a roster import, a seal) kept under its idempotency key."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.access import MAX_READ_MEMBER_IDS, PiiRead, SearchWindow, Token
from domain.errors import InvalidValue, NotFound
from service.commands.base import Command
from service.unit_of_work import UnitOfWork
from storage.keys import MemberIds


@dataclass(frozen=True, kw_only=True, eq=False)
class MintToken(Command):
    """访问令牌: stores a token whose secret the caller has hashed (service/tokens.py)."""

    NAME = "mint_token"
    token_id: UUID
    role: str
    organization_code: str | None
    pii: bool
    secret_hash: str
    expires_at: datetime.datetime

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        return (self.token_id,)

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        code = self.organization_code
        if code is not None:
            code = uow.org(code, field="organization").code
        token = Token(
            id=self.token_id,
            role=self.role,
            organization_code=code,
            pii=self.pii,
            secret_hash=self.secret_hash,
            expires_at=self.expires_at,
        )
        uow.add(token)
        return {"token_id": str(token.id), "organization_code": code}


@dataclass(frozen=True, kw_only=True, eq=False)
class RevokeToken(Command):
    """Revokes a token; revoking a revoked one records nothing (`already_revoked`)."""

    NAME = "revoke_token"
    token_id: UUID
    at: datetime.datetime

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        token = uow.get(self.token_id)
        if not isinstance(token, Token):
            raise NotFound(f"no token has id {self.token_id}")
        return {"already_revoked": not token.revoke(self.at)}


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordSearch(Command):
    """会员查询: one search by a token, counted in its window (SearchLimitReached past the
    limit) and recorded by the member id found, or none.

    pii_read_purpose: the member found is answered unmasked (a pii token), so the read is
    recorded too (个人信息查阅, as RecordPiiRead records it), in the same transaction: an
    answered search costs one durable write, and a refused one records neither."""

    NAME = "record_search"
    token_id: str
    window_start: datetime.datetime
    at: datetime.datetime
    member_id: str | None
    organization_code: str | None
    limit: int
    pii_read_purpose: str | None = None

    def request(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "window": self.window_start.isoformat(),
            "member_id": self.member_id,
        }

    @property
    def window_id(self) -> UUID:
        return SearchWindow.id_for(self.token_id, self.window_start)

    def may_create(self, member_ids: MemberIds) -> tuple[UUID, ...]:
        return (self.window_id,)

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        window = uow.get(self.window_id)
        if window is None:
            window = SearchWindow(
                id=self.window_id, token_id=self.token_id, starts_at=self.window_start
            )
            uow.add(window)
        window.search(
            member_id=self.member_id,
            organization_code=self.organization_code,
            limit=self.limit,
            at=self.at,
        )
        if self.pii_read_purpose is not None and self.member_id is not None:
            record_pii_read(uow, self.pii_read_purpose, [self.member_id])
        return {"searches": window.searches}


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordPiiRead(Command):
    """个人信息查阅: who read whose personal data unmasked, by member id only (the record must
    not become a second copy of the data)."""

    NAME = "record_pii_read"
    purpose: str
    member_ids: list[str]

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        record_pii_read(uow, self.purpose, self.member_ids)
        return {}


def record_pii_read(uow: UnitOfWork, purpose: str, member_ids: list[str]) -> None:
    """Adds a PiiRead as every unmasked read is stored (RecordPiiRead, RecordSearch): the
    purpose cut to 200 characters, each member id once, sorted, at most MAX_READ_MEMBER_IDS."""
    ids = sorted(set(member_ids))[:MAX_READ_MEMBER_IDS]
    uow.add(PiiRead(purpose=purpose[:200], member_ids=ids))


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordOutcome(Command):
    """The first answer of a request that is not one command (a roster import, a seal), kept
    under the request's idempotency key (api/idempotent.py): with the key, a retry is
    answered from it and another request under the same key is refused, as for any command."""

    NAME = "record_outcome"
    command: str
    request_: dict[str, Any]
    result: dict[str, Any]

    @property
    def command_name(self) -> str:
        return self.command

    def request(self) -> dict[str, Any]:
        return self.request_

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        if not isinstance(self.result, dict):
            raise InvalidValue("result", "an outcome is a JSON object")
        return self.result
