"""Who is calling, as what, over which organisations: the authorisation dependencies.

Roles: clerks read and write within their scope, auditors only read (the audit endpoints
too), admins do everything. A token's scope is its organisation and everything below it on the
tree as it stands today; a token without an organisation is deployment-wide.

An organisation outside the scope is a 403. A member outside it is a 404, the answer for an
unknown member: who belongs to which union is itself personal data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, MalformedRequest, Unauthenticated
from api.logs import note_token
from api.services import Services, services
from domain.errors import InvalidValue, NotFound
from service.idempotency import KEY_PATTERN, IdempotencyKey
from service.tokens import Principal
from service.unit_of_work import member_not_found
from storage.clock import today_in_china

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
        """True when the organisation is the token's own or below it on the tree as it stands
        today (Asia/Shanghai): a move dated in the future changes nobody's scope until its day
        comes. NotFound if the organisation does not exist (or the code cannot be one)."""
        scope = self.principal.organization_code
        ledger = self.services.ledger
        if scope is None:
            ledger.require_organization(code)
            return True
        return scope in ledger.organization_lineage(code, today_in_china())

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
        if self.principal.organization_code is None and (
            self.services.ledger.organization_is_cached(code)
        ):
            return
        await run_in_threadpool(self.require_org, code, field=field)

    def sees_member(self, member: dict) -> bool:
        """Whether the member's union is within the scope. That union exists (a member joins
        only an existing one, and none is ever deleted), so a deployment-wide token needs no
        look-up: loading an organisation (its snapshot and the events since) took about half
        of a lookup's time."""
        if self.principal.organization_code is None:
            return True
        return self.covers(member["organization_code"])

    def require_member(self, member_id: str) -> dict:
        """The member, if its union is within the scope. A member outside it is answered
        exactly as an unknown one (404, the same body): who belongs to which union is personal,
        and a 403 would tell a token that the person is a member somewhere else."""
        member = self.services.ledger.get_member(member_id)
        if not self.sees_member(member):
            raise member_not_found(member_id)
        return member

    def require_transfer_side(
        self, member_id: str, transfer_id: str, *, receiving_only: bool
    ) -> None:
        """A transfer is the business of both unions: either may cancel it, only the receiving
        one may accept it. A caller who covers neither union is answered as for an unknown
        member; one who covers only the releasing union may not accept (403)."""
        member = self.services.ledger.get_member(member_id)
        pending = member["pending_transfer"]
        if pending is None or pending["transfer_id"] != transfer_id:
            self.require_member(member_id)  # the command itself answers: no such transfer
            return
        if self.principal.organization_code is None:
            return
        receiving = self.covers(pending["to_organization_code"])
        if receiving:
            return
        if not self.covers(member["organization_code"]):
            raise member_not_found(member_id)
        if receiving_only:
            raise Forbidden(
                "only a token whose scope covers the receiving organisation "
                f"{pending['to_organization_code']} may accept this transfer"
            )


async def _principal(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # The dependencies are async because FastAPI runs a plain `def` one in a worker thread: a
    # hop per dependency per request. Only a token not yet verified by this process needs
    # the store, and that lookup goes to a worker thread.
    if credentials is None:
        raise Unauthenticated("an Authorization: Bearer token is required")
    principal = await verified(svc, credentials.credentials)
    if principal is None:
        raise Unauthenticated("the token is not known, has expired or was revoked")
    note_token(request.scope, principal.token_id)
    return principal


async def verified(svc: Services, token: str) -> Principal | None:
    """The principal of a token (None: unknown, expired or revoked), as every request, API
    or console, verifies it.

    One read of the store per token at a time in this process: every REVALIDATE_S the
    process's memory of a busy token lapses, and at 64 clients as many requests arrived in
    the few milliseconds the read takes, each reading the token again (and, before the short
    way did the same, each sent through FastAPI's whole stack). They now wait for the one
    read under way and take its answer. Keyed by the presented token itself, so that a
    request waits only for the verification of the very text it presented."""
    principal = svc.tokens.already_verified(token)
    if principal is not None:
        return principal
    in_flight = svc.verifying
    pending = in_flight.get(token)
    if pending is None or pending.get_loop() is not asyncio.get_running_loop():
        pending = asyncio.ensure_future(run_in_threadpool(svc.tokens.verify, token))
        in_flight[token] = pending
        pending.add_done_callback(lambda done: _forget(in_flight, token, done))
    # shield: a request that goes away does not cancel the read the others wait for.
    return await asyncio.shield(pending)


def _forget(in_flight: dict[str, asyncio.Future], token: str, done: asyncio.Future) -> None:
    if in_flight.get(token) is done:
        del in_flight[token]


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
