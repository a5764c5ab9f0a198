"""Funds (经费): levy policies, receipts, remittances, payouts, reversals, month closes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import (
    Amount,
    CreditCodeText,
    Day,
    MonthText,
    Percent,
    RequestModel,
    Written,
    text,
)

Programme = Literal["hardship", "school", "model_worker", "childcare", "condolence", "general"]
AccountCode = text(8, pattern=r"^[0-9]{3,8}$", description="会计科目代码", examples=["501"])


class Shares(RequestModel):
    base: Percent
    township: Percent
    county: Percent
    city: Percent
    province: Percent
    national: Percent


class AdoptLevyPolicy(RequestModel):
    """拨缴经费分成比例: in force below region_code from effective_from."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "region_code": "11",
                    "effective_from": "2024-01-01",
                    "shares": {
                        "base": "60",
                        "township": "0",
                        "county": "12",
                        "city": "10",
                        "province": "13",
                        "national": "5",
                    },
                }
            ]
        }
    )

    region_code: text(
        6,
        pattern=r"^[0-9]{2}([0-9]{2}){0,2}$",  # type: ignore[valid-type]
        examples=["11"],
    )
    effective_from: Day
    shares: Shares


class LevyPolicy(BaseModel):
    region_code: str
    effective_from: str
    shares: dict[str, str]


class LevyPolicyWritten(LevyPolicy, Written):
    pass


class DuesLine(RequestModel):
    member_id: text(36)  # type: ignore[valid-type]
    wage: Amount
    amount: Amount


class RecordDues(RequestModel):
    """会费: received by a base union (0.5% of each member's wage)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "organization_code": "811101050000000010",
                    "period": "2024-03",
                    "amount": "40.00",
                    "received_on": "2024-03-20",
                }
            ]
        }
    )

    organization_code: CreditCodeText
    period: MonthText
    amount: Amount
    received_on: Day
    members: list[DuesLine] | None = Field(default=None, max_length=100_000)


class RecordLevy(RequestModel):
    """拨缴经费: 2% of payroll, shared up the tree by the policy in force."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receiving_organization_code": "811101050000000010",
                    "base_organization_code": "811101050000000010",
                    "employer_code": "91110105000000007H",
                    "period": "2024-03",
                    "payroll_total": "500000.00",
                    "amount": "10000.00",
                    "channel": "employer",
                    "received_on": "2024-04-10",
                }
            ]
        }
    )

    receiving_organization_code: CreditCodeText
    base_organization_code: CreditCodeText | None
    employer_code: CreditCodeText
    period: MonthText
    payroll_total: Amount
    amount: Amount
    channel: Literal["employer", "tax"]
    received_on: Day


class RecordRemittance(RequestModel):
    """上解 (upward) or 回拨 (pass_down)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "from_organization_code": "811101050000000010",
                    "to_organization_code": "89110105000000002A",
                    "kind": "upward",
                    "amount": "4000.00",
                    "period": "2024-03",
                    "paid_on": "2024-04-15",
                }
            ]
        }
    )

    from_organization_code: CreditCodeText
    # A level's name pays what the deployment's root owes a level above it (`national`).
    to_organization_code: CreditCodeText | Literal["national", "province", "city"]
    kind: Literal["upward", "pass_down"]
    amount: Amount
    period: MonthText
    paid_on: Day


class MemberRecipient(RequestModel):
    member_id: text(36)  # type: ignore[valid-type]


class UnionRecipient(RequestModel):
    organization_code: CreditCodeText


class PaySubsidy(RequestModel):
    """补助: to a member (帮扶, 助学, 劳模, 托育, 慰问) or to a lower union."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payer_organization_code": "811101050000000010",
                    "recipient": {"member_id": "0b6f4c1e-8d1a-4f7e-9a51-3c2d1e0f9a88"},
                    "programme": "hardship",
                    "amount": "2000.00",
                    "earmarked": False,
                    "approval_ref": "朝工帮〔2024〕12号",
                    "paid_on": "2024-05-10",
                }
            ]
        }
    )

    payer_organization_code: CreditCodeText
    recipient: MemberRecipient | UnionRecipient
    programme: Programme
    amount: Amount
    earmarked: bool
    approval_ref: text(64, min_length=1)  # type: ignore[valid-type]
    paid_on: Day


class RecordExpense(RequestModel):
    """A payout from an expenditure account (Dr the account, Cr 102)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "organization_code": "811101050000000010",
                    "account_code": "501",
                    "amount": "1800.00",
                    "earmarked": False,
                    "description": "职工春季运动会场地租金",
                    "paid_on": "2024-04-20",
                }
            ]
        }
    )

    organization_code: CreditCodeText
    account_code: AccountCode
    amount: Amount
    earmarked: bool
    description: text(500, min_length=1)  # type: ignore[valid-type]
    paid_on: Day


class ReverseVoucher(RequestModel):
    """红字冲销"""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"effective_on": "2024-04-30", "reason": "金额录入错误, 红字冲销"}]
        }
    )

    effective_on: Day
    reason: text(500, min_length=1)  # type: ignore[valid-type]


class ClosePeriod(RequestModel):
    """月结"""

    model_config = ConfigDict(json_schema_extra={"examples": [{"period": "2024-03"}]})

    period: MonthText


class PeriodClosed(Written):
    organization_code: str
    period: str
    closed: bool
    year_end_voucher_id: str | None = Field(
        default=None, description="closing December: the year-end voucher (年终结账), if any"
    )
    year_end_reversal_id: str | None = Field(
        default=None, description="reopening December: the reversal of the year-end voucher"
    )


class ReopenPeriod(RequestModel):
    """反结账 (admins only): the last closed month, with a reason."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"period": "2024-03", "reason": "漏记一笔支出"}]}
    )

    period: MonthText
    reason: text(500, min_length=1)  # type: ignore[valid-type]


class PeriodClose(BaseModel):
    period: str
    closed_at: str
    actor: str


class PeriodReopening(BaseModel):
    period: str
    reopened_at: str
    actor: str
    reason: str


class Periods(BaseModel):
    organization_code: str
    last_closed: str | None
    closed: list[PeriodClose]
    reopenings: list[PeriodReopening]


class Posting(BaseModel):
    organization_code: str
    account_code: str
    debit: str
    credit: str
    earmarked: bool
    counterparty: str | None


class Voucher(Written):
    voucher_id: str
    kind: str
    effective_on: str
    numbers: dict[str, str] = Field(
        default_factory=dict,
        description="each organisation's voucher number (记-YYYY-MM-NNNN), by credit code",
    )
    postings: list[Posting]
    details: dict[str, Any]
    reverses: str | None
    reversed_by: str | None


class VoucherRecord(Voucher):
    """A voucher as recorded: its numbers, reversal links, position, time and actor."""

    description: str | None
    recorded_at: str
    actor: str
