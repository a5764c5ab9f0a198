"""工会组织: found, read, change, dissolve; list child unions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.errors import Forbidden
from api.models.common import ERRORS
from api.models.organizations import (
    ChangeOrganization,
    DissolveOrganization,
    FoundOrganization,
    Organization,
    OrganizationPage,
    OrganizationWritten,
)
from api.presenting import command, present
from api.security import Idempotency, Reader, Writer
from domain.organizations import Organization as OrganizationAggregate
from service import commands

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


@router.get("/{code}/children", response_model=OrganizationPage)
def list_children(
    caller: Reader,
    code: str,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
) -> dict:
    """The active child unions (下级工会), in code order."""
    caller.require_org(code)
    ledger = caller.services.ledger
    org = ledger.repository.get(OrganizationAggregate.id_for(code))
    children = sorted(org.active_children)
    start = (page - 1) * page_size
    items = [ledger.get_organization(c) for c in children[start : start + page_size]]
    return present(
        caller,
        {"items": items, "page": page, "page_size": page_size, "total": len(children)},
        "GET /v1/organizations/{code}/children",
    )


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
