"""工会组织: found, read, change, dissolve; list child unions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.errors import Forbidden
from api.models.common import CREDIT_CODE_PATTERN, ERRORS
from api.models.organizations import (
    ChangeOrganization,
    DissolveOrganization,
    FoundOrganization,
    Level,
    Organization,
    OrganizationPage,
    OrganizationWritten,
)
from api.presenting import command, present
from api.security import Idempotency, Reader, Writer
from service import commands
from storage.clock import today_in_china

router = APIRouter(prefix="/v1/organizations", tags=["organizations"], responses=ERRORS)
MAX_PAGE_SIZE = 1000


@router.post("", status_code=201, response_model=OrganizationWritten)
async def found_organization(
    caller: Writer, idempotency: Idempotency, body: FoundOrganization
) -> JSONResponse:
    """建会. Without `parent_code` this founds the deployment's root: admins only."""
    if body.parent_code is None:
        if caller.principal.role != "admin":
            raise Forbidden("only an admin founds the root organisation")
        caller.require_deployment_wide("founding the root organisation")
    else:
        await caller.in_scope(body.parent_code, field="parent_code")
    return await command(
        caller,
        commands.FoundOrganization(**body.model_dump()),
        idempotency,
        "POST /v1/organizations",
        201,
    )


@router.get("/{code}", response_model=Organization)
def get_organization(caller: Reader, code: str) -> dict:
    caller.require_org(code)
    return present(
        caller, caller.services.ledger.get_organization(code), "GET /v1/organizations/{code}"
    )


@router.get("", response_model=OrganizationPage)
def find_organizations(
    caller: Reader,
    q: Annotated[
        str | None,
        # No control characters: PostgreSQL text cannot hold NUL, and no name holds any.
        Query(
            max_length=50, pattern=r"^[^\x00-\x1f\x7f]*$", description="part of a name or a code"
        ),
    ] = None,
    level: Annotated[Level | None, Query()] = None,
    parent_code: Annotated[str | None, Query(max_length=18, pattern=CREDIT_CODE_PATTERN)] = None,
    status: Annotated[Literal["active", "dissolved"] | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
) -> dict:
    """Organisation lookup: unions within the token's scope whose name or code contains `q`
    (all of them without it), on the tree as it stands today, in code order."""
    found = caller.services.caught_up().organizations.lookup(
        within=caller.principal.organization_code,
        day=today_in_china(),
        q=q,
        level=level,
        parent_code=parent_code,
        status=status,
        page=page,
        page_size=page_size,
    )
    return present(caller, found, "GET /v1/organizations")


@router.get("/{code}/children", response_model=OrganizationPage)
def list_children(
    caller: Reader,
    code: str,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
) -> dict:
    """The active child unions (下级工会) on the tree as it stands today, in code order."""
    caller.require_org(code)
    found = caller.services.caught_up().organizations.children(
        code, day=today_in_china(), page=page, page_size=page_size
    )
    return present(caller, found, "GET /v1/organizations/{code}/children")


@router.post("/{code}/changes", response_model=OrganizationWritten)
async def change_organization(
    caller: Writer, idempotency: Idempotency, code: str, body: ChangeOrganization
) -> JSONResponse:
    """更名, 隶属关系变更 or 职工人数变更 from `effective_on`."""
    await caller.in_scope(code)
    if body.parent_code is not None:
        await caller.in_scope(body.parent_code, field="parent_code")
    return await command(
        caller,
        commands.ChangeOrganization(code=code, **body.model_dump()),
        idempotency,
        "POST /v1/organizations/{code}/changes",
        200,
    )


@router.post("/{code}/dissolution", response_model=OrganizationWritten)
async def dissolve_organization(
    caller: Writer, idempotency: Idempotency, code: str, body: DissolveOrganization
) -> JSONResponse:
    """撤销: 409 while the union has members or active child unions."""
    await caller.in_scope(code)
    return await command(
        caller,
        commands.DissolveOrganization(code=code, dissolved_on=body.dissolved_on),
        idempotency,
        "POST /v1/organizations/{code}/dissolution",
        200,
    )
