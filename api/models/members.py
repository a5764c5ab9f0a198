"""Members (会员) and membership changes (会籍变化) at the HTTP boundary."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import (
    CreditCodeText,
    Day,
    IdNumberText,
    Mobile,
    Name,
    ReasonCode,
    RequestModel,
    Written,
    text,
)


class JoinMember(RequestModel):
    """入会 (or 入会 again after leaving)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id_number": "110105199003071239",
                    "name": "张伟",
                    "organization_code": "811101050000000010",
                    "joined_on": "2024-03-15",
                    "mobile": "13812345678",
                    "migrant_worker": False,
                    "new_employment_form": False,
                }
            ]
        }
    )

    id_number: IdNumberText
    name: Name
    organization_code: CreditCodeText
    joined_on: Day
    mobile: Mobile | None = None
    migrant_worker: bool = False
    new_employment_form: bool = False


class SearchMember(RequestModel):
    """Find a member by identity number (in a body, so that it never lands in a URL log)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"id_number": "110105199003071239"}]})

    id_number: IdNumberText


class StartTransfer(RequestModel):
    """转出: the releasing union starts a transfer to a receiving base union."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to_organization_code": "811101050000000023",
                    "effective_on": "2024-07-01",
                    "reason_code": 1,
                }
            ]
        }
    )

    to_organization_code: CreditCodeText
    effective_on: Day
    reason_code: ReasonCode


class AcceptTransfer(RequestModel):
    """转入: the receiving union accepts."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"effective_on": "2024-07-05"}]})

    effective_on: Day


class CancelTransfer(RequestModel):
    """A pending transfer is withdrawn; the body is empty."""

    model_config = ConfigDict(json_schema_extra={"examples": [{}]})


class RetainMember(RequestModel):
    """保留会籍"""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"effective_on": "2024-08-01", "reason_code": 2}]}
    )

    effective_on: Day
    reason_code: ReasonCode


class ReinstateMember(RequestModel):
    """恢复会籍"""

    model_config = ConfigDict(json_schema_extra={"examples": [{"effective_on": "2024-10-01"}]})

    effective_on: Day


class ExitMember(RequestModel):
    """除名 (5) or 退会 (6)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"effective_on": "2024-12-01", "change_code": 6, "reason_code": 5}]
        }
    )

    effective_on: Day
    change_code: Literal[5, 6]
    reason_code: ReasonCode


class CorrectMember(RequestModel):
    """更正: any of the personal details; the identity number never changes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "张伟", "mobile": "13912345678", "note": "据本人身份证更正手机号"}
            ]
        }
    )

    name: Name | None = None
    mobile: Mobile | None = None
    migrant_worker: bool | None = None
    new_employment_form: bool | None = None
    note: text(500) | None = None  # type: ignore[valid-type]


class PendingTransfer(BaseModel):
    transfer_id: str
    to_organization_code: str
    effective_on: str
    reason_code: int


class Member(BaseModel):
    member_id: str
    name: str
    id_number: str = Field(description="masked (110105********002X) unless the token allows")
    sex: Literal["male", "female"]
    birth_year: int
    birth_date: str | None = Field(
        description="YYYY-MM-DD; null when masked (the hidden digits of the identity number "
        "are the birth date): only birth_year is given then"
    )
    mobile: str | None = Field(description="masked (138****5678) unless the token allows")
    status: Literal["active", "retained", "transfer_pending", "left"]
    organization_code: str
    joined_on: str
    migrant_worker: bool
    new_employment_form: bool
    pending_transfer: PendingTransfer | None


class MemberWritten(Member, Written):
    pass


class TransferStarted(Written):
    transfer_id: str
    status: Literal["pending"]
    member: Member


class HistoryItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    change_code: int
    reason_code: int | None
    organization_code: str
    effective_on: str
    recorded_at: str
    position: int


class MemberHistory(BaseModel):
    model_config = ConfigDict(extra="allow")

    member_id: str
    items: list[HistoryItem]


class RejectedRow(BaseModel):
    row: int = Field(description="the row number in the file (the header is row 1)")
    reason: str
    field: str | None = None


class AcceptedRow(BaseModel):
    row: int
    member_id: str
    replayed: bool


class ImportReport(Written):
    organization_code: str
    rows_total: int
    rows_accepted: int
    rows_rejected: int
    accepted: list[AcceptedRow]
    rejected: list[RejectedRow]
