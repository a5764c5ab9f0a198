"""会员: join, find, read, and every membership change (会籍变化)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.models.common import ERRORS
from api.models.members import (
    AcceptTransfer,
    CorrectMember,
    ExitMember,
    JoinMember,
    Member,
    MemberHistory,
    MemberWritten,
    ReinstateMember,
    RetainMember,
    SearchMember,
    StartTransfer,
    TransferStarted,
)
from api.presenting import command, present
from api.security import Idempotency, Reader, Writer

router = APIRouter(prefix="/v1/members", tags=["members"], responses=ERRORS)


@router.post("", status_code=201, response_model=MemberWritten)
async def join_member(caller: Writer, idempotency: Idempotency, body: JoinMember) -> JSONResponse:
    """入会. 409 if the person is a member anywhere; a person who left joins again here."""
    await caller.in_scope(body.organization_code, field="organization_code")
    return await command(caller, lambda: caller.services.ledger.join_member(
        **body.model_dump(), actor=caller.actor, idempotency=idempotency
    ), "POST /v1/members", 201)


@router.post("/search", response_model=Member)
def search_member(caller: Reader, _: Idempotency, body: SearchMember) -> dict:
    """The member with this identity number, or 404. Writes nothing."""
    member = caller.services.ledger.find_member(body.id_number)
    caller.require_member_org(member)
    return present(caller, member, "POST /v1/members/search")


@router.get("/{member_id}", response_model=Member)
def get_member(caller: Reader, member_id: str) -> dict:
    member = caller.require_member(member_id)
    return present(caller, member, "GET /v1/members/{member_id}")


@router.get("/{member_id}/history", response_model=MemberHistory)
def member_history(caller: Reader, member_id: str) -> dict:
    """会籍变化: change_code (1-6), reason_code, organization_code, effective_on,
    recorded_at, position."""
    caller.require_member(member_id)
    items = caller.services.caught_up().member_history(member_id)
    return present(caller, {"member_id": member_id, "items": items},
                   "GET /v1/members/{member_id}/history")


@router.post("/{member_id}/transfers", status_code=201, response_model=TransferStarted)
async def start_transfer(
    caller: Writer, idempotency: Idempotency, member_id: str, body: StartTransfer
) -> JSONResponse:
    """转出: started by the releasing union."""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(caller, lambda: caller.services.ledger.start_transfer(
        member_id, **body.model_dump(), actor=caller.actor, idempotency=idempotency
    ), "POST /v1/members/{member_id}/transfers", 201)


def _either_side(caller: Writer, member_id: str) -> None:
    member = caller.services.ledger.get_member(member_id)
    codes = [member["organization_code"]]
    if member["pending_transfer"] is not None:
        codes.append(member["pending_transfer"]["to_organization_code"])
    caller.require_any_org(codes)


@router.post("/{member_id}/transfers/{transfer_id}/acceptance", response_model=MemberWritten)
async def accept_transfer(
    caller: Writer, idempotency: Idempotency, member_id: str, transfer_id: str,
    body: AcceptTransfer,
) -> JSONResponse:
    """转入: the receiving union accepts (a token of either union may record it)."""
    await run_in_threadpool(_either_side, caller, member_id)
    return await command(caller, lambda: caller.services.ledger.accept_transfer(
        member_id, transfer_id, effective_on=body.effective_on, actor=caller.actor,
        idempotency=idempotency,
    ), "POST .../transfers/{transfer_id}/acceptance", 200)


@router.post("/{member_id}/transfers/{transfer_id}/cancellation", response_model=MemberWritten)
async def cancel_transfer(
    caller: Writer, idempotency: Idempotency, member_id: str, transfer_id: str
) -> JSONResponse:
    """The pending transfer is withdrawn; the member stays where it was. No body."""
    await run_in_threadpool(_either_side, caller, member_id)
    return await command(caller, lambda: caller.services.ledger.cancel_transfer(
        member_id, transfer_id, actor=caller.actor, idempotency=idempotency
    ), "POST .../transfers/{transfer_id}/cancellation", 200)


@router.post("/{member_id}/retention", response_model=MemberWritten)
async def retain_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: RetainMember
) -> JSONResponse:
    """保留会籍"""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(caller, lambda: caller.services.ledger.retain_member(
        member_id, **body.model_dump(), actor=caller.actor, idempotency=idempotency
    ), "POST /v1/members/{member_id}/retention", 200)


@router.post("/{member_id}/reinstatement", response_model=MemberWritten)
async def reinstate_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: ReinstateMember
) -> JSONResponse:
    """恢复会籍"""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(caller, lambda: caller.services.ledger.reinstate_member(
        member_id, effective_on=body.effective_on, actor=caller.actor, idempotency=idempotency
    ), "POST /v1/members/{member_id}/reinstatement", 200)


@router.post("/{member_id}/exit", response_model=MemberWritten)
async def exit_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: ExitMember
) -> JSONResponse:
    """除名 (change_code 5) or 退会 (6)."""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(caller, lambda: caller.services.ledger.exit_member(
        member_id, **body.model_dump(), actor=caller.actor, idempotency=idempotency
    ), "POST /v1/members/{member_id}/exit", 200)


@router.post("/{member_id}/corrections", response_model=MemberWritten)
async def correct_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: CorrectMember
) -> JSONResponse:
    """更正 of name, mobile (null clears it) or the flags, with an optional note."""
    await run_in_threadpool(caller.require_member, member_id)
    changes = body.model_dump(exclude_unset=True)
    note = changes.pop("note", None)
    return await command(caller, lambda: caller.services.ledger.correct_member(
        member_id, changes=changes, note=note, actor=caller.actor, idempotency=idempotency
    ), "POST /v1/members/{member_id}/corrections", 200)
