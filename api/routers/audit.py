"""审计: the raw event stream (masked), seals over the hash chain, and verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.idempotent import run_once
from api.json_answer import JsonAnswer
from api.models.common import CREDIT_CODE_PATTERN, ERRORS
from api.models.reads import AuditEvents, Seal, Seals, Verification
from api.presenting import present
from api.security import Admin, Auditor, Idempotency
from projections.audit.events import is_person_topic, mask_record

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERRORS)
MAX_EVENTS = 1000


@router.get("/events", response_model=AuditEvents)
def audit_events(
    caller: Auditor,
    after: Annotated[int, Query(ge=0, le=2**62, description="a position")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
    organization_code: Annotated[
        str | None, Query(max_length=18, pattern=CREDIT_CODE_PATTERN)
    ] = None,
) -> dict[str, Any]:
    """position, recorded_at, stream_id, version, type, data (masked), actor — in order.
    A token scoped to an organisation sees the events of organisations within its scope
    (its own by default). A filtered request reads the audit index, and decodes at most a
    bounded number of the newest events beyond it: `next_after` is the position to pass as
    `after` to go on (null: the end of the log was reached)."""
    code = organization_code or caller.principal.organization_code
    if code is not None:
        caller.require_org(code)
    page = caller.services.audit.events(
        after=after, limit=limit, organization_code=code, unmasked=True
    )
    # Masked unless the token has the pii flag; a member's own events name the member by
    # their stream, which an unmasked reading records with the member ids in the data.
    members = [e["stream_id"] for e in page["items"] if is_person_topic(e["type"])]
    return present(
        caller,
        {**page, "after": after, "limit": limit},
        "GET /v1/audit/events",
        members,
        masker=lambda body: {**body, "items": [mask_record(e) for e in body["items"]]},
    )


@router.post("/seals", status_code=201, response_model=Seal)
def seal(caller: Admin, idempotency: Idempotency) -> JSONResponse:
    """封印: chains the events recorded since the last seal and signs the head. The chain
    covers the whole deployment, so only a deployment-wide admin seals it."""
    caller.require_deployment_wide("sealing the audit chain")
    body, replayed = run_once(caller, idempotency, "audit_seal", {}, caller.services.audit.seal)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JsonAnswer(body, status_code=201, headers=headers)


@router.get("/seals", response_model=Seals)
def seals(caller: Auditor) -> dict[str, Any]:
    items = caller.services.audit.seals()
    return present(caller, {"items": items, "total": len(items)}, "GET /v1/audit/seals")


@router.get("/verification", response_model=Verification)
def verification(caller: Auditor) -> dict[str, Any]:
    """ok, verified_through, seals_checked, and on failure first_bad_position, with the
    reason. A store with events and no seal, or no public key configured outside the
    database, is not proven (`ok` false). The chain covers the whole deployment, so only a
    deployment-wide token verifies it. Answered from the last verification while nothing was
    written or sealed since (`cached`)."""
    caller.require_deployment_wide("verifying the audit chain")
    return present(caller, caller.services.audit.verification(), "GET /v1/audit/verification")
