"""经费: receipts (会费, 拨缴经费), remittances (上解, 回拨), payouts (补助, 支出), 红字冲销, 月结.

Every fund POST answers 201 with the voucher; its postings balance and may touch several
organisations' books."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.models.common import ERRORS
from api.models.funds import (
    ClosePeriod,
    PaySubsidy,
    PeriodClosed,
    Periods,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RecordRemittance,
    ReopenPeriod,
    ReverseVoucher,
    Voucher,
    VoucherRecord,
)
from api.presenting import command, present
from api.security import Admin, Idempotency, Reader, Writer
from domain.errors import NotFound
from projections.audit.trail import AuditTrail
from service import commands

router = APIRouter(tags=["funds"], responses=ERRORS)
log = logging.getLogger(__name__)


@router.post("/v1/funds/dues", status_code=201, response_model=Voucher)
async def record_dues(caller: Writer, idempotency: Idempotency, body: RecordDues) -> JSONResponse:
    """会费 received by a base union: Dr 102, Cr 401."""
    await caller.in_scope(body.organization_code, field="organization_code")
    return await command(
        caller, commands.RecordDues(**body.model_dump()), idempotency, "POST /v1/funds/dues", 201
    )


@router.post("/v1/funds/levies", status_code=201, response_model=Voucher)
async def record_levy(caller: Writer, idempotency: Idempotency, body: RecordLevy) -> JSONResponse:
    """拨缴经费 (2% of payroll): Dr 102; Cr 402 own share, 211 shares above, 212 below
    (or 215 for a founding reserve when `base_organization_code` is null)."""
    await caller.in_scope(body.receiving_organization_code, field="receiving_organization_code")
    return await command(
        caller, commands.RecordLevy(**body.model_dump()), idempotency, "POST /v1/funds/levies", 201
    )


@router.post("/v1/funds/remittances", status_code=201, response_model=Voucher)
async def record_remittance(
    caller: Writer, idempotency: Idempotency, body: RecordRemittance
) -> JSONResponse:
    """上解 (upward) or 回拨 (pass_down); 409 when more than the payer owes the receiver."""
    await caller.in_scope(body.from_organization_code, field="from_organization_code")
    return await command(
        caller,
        commands.RecordRemittance(**body.model_dump()),
        idempotency,
        "POST /v1/funds/remittances",
        201,
    )


@router.post("/v1/funds/subsidies", status_code=201, response_model=Voucher)
async def pay_subsidy(caller: Writer, idempotency: Idempotency, body: PaySubsidy) -> JSONResponse:
    """补助 to a member or a lower union; 409 if the bank account (102) would go below zero."""
    await caller.in_scope(body.payer_organization_code, field="payer_organization_code")
    return await command(
        caller,
        commands.PaySubsidy(**body.model_dump()),
        idempotency,
        "POST /v1/funds/subsidies",
        201,
    )


@router.post("/v1/funds/expenses", status_code=201, response_model=Voucher)
async def record_expense(
    caller: Writer, idempotency: Idempotency, body: RecordExpense
) -> JSONResponse:
    """支出: Dr the expenditure account, Cr 102."""
    await caller.in_scope(body.organization_code, field="organization_code")
    return await command(
        caller,
        commands.RecordExpense(**body.model_dump()),
        idempotency,
        "POST /v1/funds/expenses",
        201,
    )


@router.post("/v1/funds/vouchers/{voucher_id}/reversal", status_code=201, response_model=Voucher)
async def reverse_voucher(
    caller: Writer, idempotency: Idempotency, voucher_id: str, body: ReverseVoucher
) -> JSONResponse:
    """红字冲销: the original postings swapped. Every book it touches must be in scope."""
    voucher = await run_in_threadpool(caller.services.ledger.get_voucher, voucher_id)
    for code in sorted({p["organization_code"] for p in voucher["postings"]}):
        await caller.in_scope(code)
    return await command(
        caller,
        commands.ReverseVoucher(voucher_id=voucher_id, **body.model_dump()),
        idempotency,
        "POST /v1/funds/vouchers/{voucher_id}/reversal",
        201,
    )


@router.get("/v1/funds/vouchers/{voucher_id}", response_model=VoucherRecord)
def get_voucher(caller: Reader, voucher_id: str) -> dict:
    """记账凭证: the whole voucher. A token sees it if its scope covers a book it touches."""
    record = caller.services.ledger.voucher_record(voucher_id)
    codes = sorted({p["organization_code"] for p in record["postings"]})
    allowed = [code for code in codes if caller.covers(code)]
    if not allowed:
        raise NotFound(f"voucher {voucher_id[:40]} not found")
    return present(caller, record, "GET /v1/funds/vouchers/{voucher_id}")


@router.post("/v1/organizations/{code}/period-closes", status_code=201, response_model=PeriodClosed)
async def close_period(
    caller: Writer, idempotency: Idempotency, code: str, body: ClosePeriod
) -> JSONResponse:
    """月结: later postings dated in that month are refused (409). The audit chain is sealed
    once the close is stored, so that every month's books end under a seal."""
    await caller.in_scope(code)
    response = await command(
        caller,
        commands.ClosePeriod(organization_code=code, period=body.period),
        idempotency,
        "POST /v1/organizations/{code}/period-closes",
        201,
    )
    if response.status_code == 201 and "Idempotent-Replayed" not in response.headers:
        await run_in_threadpool(seal_after_close, caller.services.audit, code, body.period)
    return response


@router.post(
    "/v1/organizations/{code}/period-reopenings", status_code=201, response_model=PeriodClosed
)
async def reopen_period(
    caller: Admin, idempotency: Idempotency, code: str, body: ReopenPeriod
) -> JSONResponse:
    """反结账: the last closed month only (409 for any other), with a reason."""
    await caller.in_scope(code)
    return await command(
        caller,
        commands.ReopenPeriod(organization_code=code, period=body.period, reason=body.reason),
        idempotency,
        "POST /v1/organizations/{code}/period-reopenings",
        201,
    )


@router.get("/v1/organizations/{code}/periods", response_model=Periods)
def periods(caller: Reader, code: str) -> dict:
    """The closed months with when and by whom, and every reopening with its reason."""
    caller.require_org(code)
    return present(
        caller, caller.services.ledger.periods(code), "GET /v1/organizations/{code}/periods"
    )


def seal_after_close(audit: AuditTrail, code: str, period: str) -> None:
    """The close is stored whatever happens here: a failed seal is logged for the operators
    (a seal refused over rows that contradict an earlier one is a finding, not the client's
    error), and the server's hourly sealing tries again."""
    try:
        made = audit.seal()
    except Exception as exc:
        log.error("sealing after the close of %s %s failed: %s", code, period, exc)
        return
    if made is not None:
        log.info(
            "sealed through position %s after the close of %s %s", made["position"], code, period
        )
