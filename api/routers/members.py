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
from api.presenting import command, present, shown
from api.security import Caller, Idempotency, Reader, Writer
from domain.access import window_start
from domain.errors import AlreadyMember, NotFound
from service import commands
from service.application import NO_SUCH_PERSON
from storage import clock

router = APIRouter(prefix="/v1/members", tags=["members"], responses=ERRORS)


@router.post("", status_code=201, response_model=MemberWritten)
async def join_member(caller: Writer, idempotency: Idempotency, body: JoinMember) -> JSONResponse:
    """入会. 409 if the person is a member anywhere (the union is named only to a token whose
    scope covers it); a person who left joins again here."""
    await caller.in_scope(body.organization_code, field="organization_code")
    try:
        return await command(
            caller, commands.JoinMember(**body.model_dump()), idempotency, "POST /v1/members", 201
        )
    except AlreadyMember as exc:
        raise await _told(caller, exc) from None


async def _told(caller: Caller, exc: AlreadyMember) -> AlreadyMember:
    """What the caller may be told of the membership that stands in the way."""
    if caller.principal.organization_code is not None and not await run_in_threadpool(
        caller.covers, exc.organization_code
    ):
        return exc  # the domain's words, which name no union
    return AlreadyMember(
        f"this person is already a member ({exc.status}) of {exc.organization_code}",
        organization_code=exc.organization_code,
        status=exc.status,
    )


@router.post(
    "/search",
    response_model=Member,
    responses={
        429: {
            **ERRORS[404],
            "description": "Too many searches by this token this minute (see Retry-After)",
        }
    },
)
async def search_member(caller: Reader, _: Idempotency, body: SearchMember) -> dict:
    """The member with this identity number, or 404: for an unknown person and for a member
    outside the token's scope alike. Each token may search `LEDGER_SEARCHES_PER_MINUTE` times
    a minute (429 with Retry-After beyond that); every search is recorded in the audit stream
    with the member id it found, never the identity number, and with it, for a token that
    sees personal data, the unmasked read (个人信息查阅). Writes nothing else."""
    member = await run_in_threadpool(_visible_member, caller, body.id_number)
    answer, read = (None, None) if member is None else shown(caller, member)
    services = caller.services
    now = clock.now()
    # An unmasked answer's read is recorded with the search, in one write (RecordSearch).
    await services.ledger.execute_async(
        commands.RecordSearch(
            token_id=caller.principal.token_id,
            window_start=window_start(now),
            at=now,
            member_id=None if member is None else member["member_id"],
            organization_code=None if member is None else member["organization_code"],
            limit=services.settings.searches_per_minute,
            pii_read_purpose=None if read is None else "POST /v1/members/search",
        ),
        actor=caller.actor,
    )
    if member is None:
        raise NotFound(NO_SUCH_PERSON)
    return answer


def _visible_member(caller: Caller, id_number: str) -> dict | None:
    try:
        member = caller.services.ledger.find_member(id_number)
    except NotFound:
        return None
    return member if caller.sees_member(member) else None


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
    return present(
        caller, {"member_id": member_id, "items": items}, "GET /v1/members/{member_id}/history"
    )


@router.post("/{member_id}/transfers", status_code=201, response_model=TransferStarted)
async def start_transfer(
    caller: Writer, idempotency: Idempotency, member_id: str, body: StartTransfer
) -> JSONResponse:
    """转出: started by the releasing union."""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(
        caller,
        commands.StartTransfer(member_id=member_id, **body.model_dump()),
        idempotency,
        "POST /v1/members/{member_id}/transfers",
        201,
    )


@router.post("/{member_id}/transfers/{transfer_id}/acceptance", response_model=MemberWritten)
async def accept_transfer(
    caller: Writer,
    idempotency: Idempotency,
    member_id: str,
    transfer_id: str,
    body: AcceptTransfer,
) -> JSONResponse:
    """转入: the receiving union accepts. Only a token whose scope covers the receiving
    organisation may accept (403 for one that covers only the releasing side)."""
    await run_in_threadpool(
        caller.require_transfer_side, member_id, transfer_id, receiving_only=True
    )
    return await command(
        caller,
        commands.AcceptTransfer(
            member_id=member_id, transfer_id=transfer_id, effective_on=body.effective_on
        ),
        idempotency,
        "POST .../transfers/{transfer_id}/acceptance",
        200,
    )


@router.post("/{member_id}/transfers/{transfer_id}/cancellation", response_model=MemberWritten)
async def cancel_transfer(
    caller: Writer, idempotency: Idempotency, member_id: str, transfer_id: str
) -> JSONResponse:
    """The pending transfer is withdrawn; the member stays where it was. Either union may
    cancel. No body."""
    await run_in_threadpool(
        caller.require_transfer_side, member_id, transfer_id, receiving_only=False
    )
    return await command(
        caller,
        commands.CancelTransfer(member_id=member_id, transfer_id=transfer_id),
        idempotency,
        "POST .../transfers/{transfer_id}/cancellation",
        200,
    )


@router.post("/{member_id}/retention", response_model=MemberWritten)
async def retain_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: RetainMember
) -> JSONResponse:
    """保留会籍"""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(
        caller,
        commands.RetainMember(member_id=member_id, **body.model_dump()),
        idempotency,
        "POST /v1/members/{member_id}/retention",
        200,
    )


@router.post("/{member_id}/reinstatement", response_model=MemberWritten)
async def reinstate_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: ReinstateMember
) -> JSONResponse:
    """恢复会籍"""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(
        caller,
        commands.ReinstateMember(member_id=member_id, effective_on=body.effective_on),
        idempotency,
        "POST /v1/members/{member_id}/reinstatement",
        200,
    )


@router.post("/{member_id}/exit", response_model=MemberWritten)
async def exit_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: ExitMember
) -> JSONResponse:
    """除名 (change_code 5) or 退会 (6)."""
    await run_in_threadpool(caller.require_member, member_id)
    return await command(
        caller,
        commands.ExitMember(member_id=member_id, **body.model_dump()),
        idempotency,
        "POST /v1/members/{member_id}/exit",
        200,
    )


@router.post("/{member_id}/corrections", response_model=MemberWritten)
async def correct_member(
    caller: Writer, idempotency: Idempotency, member_id: str, body: CorrectMember
) -> JSONResponse:
    """更正 of name, mobile (null clears it) or the flags, with an optional note."""
    await run_in_threadpool(caller.require_member, member_id)
    changes = body.model_dump(exclude_unset=True)
    note = changes.pop("note", None)
    return await command(
        caller,
        commands.CorrectMember(member_id=member_id, changes=changes, note=note),
        idempotency,
        "POST /v1/members/{member_id}/corrections",
        200,
    )
