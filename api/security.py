"""Who is calling, as what, over which organisations: the authorisation dependencies.

Roles: clerks read and write within their scope, auditors only read (the audit endpoints
too), admins do everything. A token's scope is its organisation and everything below it;
a token without an organisation is deployment-wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, MalformedRequest, Unauthenticated
from api.services import Services, services
from domain.errors import InvalidValue, NotFound
from service.idempotency import KEY_PATTERN, IdempotencyKey
from service.tokens import Principal

READERS = ("clerk", "auditor", "admin")
WRITERS = ("clerk", "admin")
AUDITORS = ("auditor", "admin")
ADMINS = ("admin",)
MAX_TREE_DEPTH = 12

_bearer = HTTPBearer(
    auto_error=False,
    description="A token minted with `ledger token create`: `Authorization: Bearer <token>`.",
)


@dataclass(frozen=True)
class Caller:
    """The verified principal of a request, with the checks handlers ask of it."""

    principal: Principal
    services: Services

    @property
    def actor(self) -> str:
        return self.principal.actor

    @property
    def pii(self) -> bool:
        return self.principal.pii

    def require_deployment_wide(self, what: str) -> None:
        if self.principal.organization_code is not None:
            raise Forbidden(f"{what} needs a deployment-wide token")

    def covers(self, code: str) -> bool:
        """True when the organisation is the token's own or below it (NotFound if unknown)."""
        scope = self.principal.organization_code
        if scope is None:
            self.services.ledger.require_organization(code)
            return True
        view = self.services.ledger.get_organization(code)
        for _ in range(MAX_TREE_DEPTH):
            if view["code"] == scope:
                return True
            if view["parent_code"] is None:
                return False
            view = self.services.ledger.get_organization(view["parent_code"])
        return False

    def require_org(self, code: str, *, field: str | None = None) -> None:
        """403 outside the scope. An unknown organisation named in a path is a 404, in a
        body field a 422, as the ledger itself would answer."""
        try:
            inside = self.covers(code)
        except NotFound:
            if field is not None:
                raise InvalidValue(field, f"no organisation has code {str(code)[:40]!r}") from None
            raise
        if not inside:
            raise Forbidden(f"organisation {code} is outside this token's scope")

    async def in_scope(self, code: str, *, field: str | None = None) -> None:
        """require_org() for async handlers: in the event loop when it needs no store access
        (a deployment-wide token and a cached organisation), else in a worker thread."""
        if self.principal.organization_code is None and isinstance(code, str) and (
            self.services.ledger.organization_is_cached(code)
        ):
            return
        await run_in_threadpool(self.require_org, code, field=field)

    def require_any_org(self, codes: list[str]) -> None:
        """At least one of the organisations lies within the scope (transfers: either side)."""
        if self.principal.organization_code is None:
            return
        for code in codes:
            try:
                if self.covers(code):
                    return
            except NotFound:
                continue
        raise Forbidden("outside this token's scope")

    def require_member(self, member_id: str) -> dict:
        """The member (404 if unknown) when its organisation is within the scope."""
        member = self.services.ledger.get_member(member_id)
        self.require_member_org(member)
        return member

    def require_member_org(self, member: dict) -> None:
        """403 unless the member's organisation is within the scope. That organisation
        exists (a member joins only an existing one, and none is ever deleted), so a
        deployment-wide token needs no look-up: loading an organisation (its snapshot and
        the events since) took about half of a lookup's time."""
        if self.principal.organization_code is not None:
            self.require_org(member["organization_code"])


async def _principal(
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # The dependencies are async because FastAPI runs a plain `def` one in a worker thread: a
    # hop per dependency per request. Only a token not yet verified by this process needs
    # the store, and that lookup goes to a worker thread.
    if credentials is None:
        raise Unauthenticated("an Authorization: Bearer token is required")
    principal = svc.tokens.already_verified(credentials.credentials)
    if principal is None:
        principal = await run_in_threadpool(svc.tokens.verify, credentials.credentials)
    if principal is None:
        raise Unauthenticated("the token is not known")
    return principal


def caller_with(*roles: str) -> Callable[..., Any]:
    async def dependency(
        svc: Annotated[Services, Depends(services)],
        principal: Annotated[Principal, Depends(_principal)],
    ) -> Caller:
        if principal.role not in roles:
            raise Forbidden(f"the {principal.role} role cannot do this")
        return Caller(principal, svc)

    return dependency


Reader = Annotated[Caller, Depends(caller_with(*READERS))]
Writer = Annotated[Caller, Depends(caller_with(*WRITERS))]
Auditor = Annotated[Caller, Depends(caller_with(*AUDITORS))]
Admin = Annotated[Caller, Depends(caller_with(*ADMINS))]


async def _idempotency(
    principal: Annotated[Principal, Depends(_principal)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=f"^{KEY_PATTERN}$",
            description="1-128 visible ASCII characters, unique per request within the "
            "token's organisation. A retry with the same key and body replays the response.",
            examples=["7f3c9a2e-join-20240301-0001"],
        ),
    ] = None,
) -> IdempotencyKey:
    if idempotency_key is None:
        raise MalformedRequest("the Idempotency-Key header is required on every POST")
    return IdempotencyKey.parse(principal.idempotency_scope, idempotency_key)


Idempotency = Annotated[IdempotencyKey, Depends(_idempotency)]
