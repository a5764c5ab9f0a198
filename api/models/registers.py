"""The registers at the HTTP boundary: hardship files (困难职工档案), model workers (劳模名册)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models.common import (
    Amount,
    CreditCodeText,
    Day,
    IdNumberText,
    Name,
    RequestModel,
    Written,
    text,
)

Category = Literal["deep", "relative", "sudden"]
Cause = Literal["illness", "disability", "education", "accident", "unemployment", "other"]
Level = Literal["national", "provincial", "city", "county"]
Reason = text(200, min_length=1)


class OpenHardshipFile(RequestModel):
    """建档: a union opens a hardship file for one of its members."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "0b5f0c8e-4a4e-5c52-9a3e-0a1f4f3f2b11",
                    "category": "relative",
                    "causes": ["illness", "education"],
                    "household_size": 4,
                    "monthly_income_per_head": "720.00",
                    "opened_on": "2025-03-01",
                }
            ]
        }
    )

    member_id: text(64, min_length=1)  # type: ignore[valid-type]
    category: Category
    causes: list[Cause] = Field(min_length=1, max_length=6)
    household_size: int = Field(ge=1, le=30, strict=True)
    monthly_income_per_head: Amount
    opened_on: Day
    organization_code: CreditCodeText | None = Field(
        default=None, description="the union opening the file: only the member's own may"
    )


class ReviewHardshipFile(RequestModel):
    """年度复核: the household's figures again; the category kept or changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reviewed_on": "2026-02-20",
                    "category": "relative",
                    "household_size": 4,
                    "monthly_income_per_head": "860.00",
                }
            ]
        }
    )

    reviewed_on: Day
    category: Category
    household_size: int = Field(ge=1, le=30, strict=True)
    monthly_income_per_head: Amount


class CloseHardshipFile(RequestModel):
    """脱困: the file is closed with a reason."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"closed_on": "2026-06-30", "reason": "再就业，收入稳定"}]}
    )

    closed_on: Day
    reason: Reason


class RegisterModelWorker(RequestModel):
    """劳模登记: a person by identity number, or another honour for one on the register."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id_number": "110105199003071239",
                    "name": "张伟",
                    "honour": "县级劳动模范",
                    "level": "county",
                    "awarded_year": 2021,
                    "organization_code": "811101050000000010",
                }
            ]
        }
    )

    id_number: IdNumberText
    name: Name
    honour: text(200, min_length=1)  # type: ignore[valid-type]
    level: Level
    awarded_year: int = Field(ge=1950, le=2100, strict=True)
    organization_code: CreditCodeText


class RevokeModelWorker(RequestModel):
    """撤销: the honours are withdrawn from revoked_on."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"revoked_on": "2026-07-01", "reason": "依规撤销称号"}]}
    )

    revoked_on: Day
    reason: Reason


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class HardshipFile(Open):
    file_id: str
    member_id: str
    name: str | None
    organization_code: str
    opened_by: str
    category: str
    causes: list[str] = Field(description="因病/因残 only for tokens with the pii flag")
    household_size: int
    monthly_income_per_head: str | None = Field(description="null for tokens without pii")
    opened_on: str
    last_reviewed_on: str | None
    reviews: int
    review_due: str | None
    status: Literal["open", "closed"]
    closed_on: str | None
    reason: str | None


class HardshipFileWritten(HardshipFile, Written):
    pass


class HardshipFileListed(HardshipFile):
    overdue: bool


class HardshipFiles(Open):
    as_of: str
    scope: str
    items: list[HardshipFileListed]
    page: int
    page_size: int
    total: int


class Honour(Open):
    honour: str
    level: str
    awarded_year: int


class ModelWorker(Open):
    model_worker_id: str
    member_id: str
    id_number: str | None
    name: str | None
    organization_code: str
    level: str
    honours: list[Honour]
    status: Literal["active", "revoked"]
    revoked_on: str | None
    reason: str | None


class ModelWorkerWritten(ModelWorker, Written):
    pass


class ModelWorkers(Open):
    scope: str
    items: list[ModelWorker]
    page: int
    page_size: int
    total: int


class AssistanceReport(Open):
    """困难职工帮扶和劳模工作统计."""

    hardship: dict[str, Any]
    model_workers: dict[str, Any]
    programmes: list[dict[str, Any]]
    ledger_check: list[dict[str, Any]]
