"""拨缴经费分成比例: the levy-sharing policies by region."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.models.common import ERRORS
from api.models.funds import AdoptLevyPolicy, LevyPolicy, LevyPolicyWritten
from api.presenting import command, present
from api.security import Admin, Idempotency, Reader
from service import commands

router = APIRouter(prefix="/v1/levy-policies", tags=["levy policies"], responses=ERRORS)


@router.post("", status_code=201, response_model=LevyPolicyWritten)
async def adopt_levy_policy(
    caller: Admin, idempotency: Idempotency, body: AdoptLevyPolicy
) -> JSONResponse:
    """A region's sharing applies to every union below it: deployment-wide admins only."""
    caller.require_deployment_wide("adopting a levy policy")
    return await command(
        caller,
        commands.AdoptLevyPolicy(**body.model_dump()),
        idempotency,
        "POST /v1/levy-policies",
        201,
    )


@router.get("", response_model=LevyPolicy)
def levy_policy_in_force(
    caller: Reader,
    region_code: Annotated[str, Query(max_length=6, examples=["110105"])],
    on: Annotated[str, Query(max_length=10, examples=["2024-03-01"])],
) -> dict:
    """The policy in force for a region (2, 4 or 6 digits) on a date; 404 if none."""
    return present(
        caller,
        caller.services.ledger.levy_policy_in_force(region_code, on),
        "GET /v1/levy-policies",
    )
