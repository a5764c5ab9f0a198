"""Response models of the read endpoints (rolls, statements, audit). They name the fields the
contract promises and allow more, so that the read side can add fields without breaking them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RollEntry(Open):
    member_id: str
    name: str | None
    id_number: str | None
    birth_year: int | None
    birth_date: str | None = None  # null when masked
    mobile: str | None
    status: str
    organization_code: str
    joined_on: str | None


class RollPage(Open):
    items: list[RollEntry]
    page: int
    page_size: int
    total: int


class RollSummary(Open):
    members: int
    retained: int
    women: int
    migrant_workers: int
    new_employment_form: int
    employees: int
    membership_rate: str | None


class RollChange(Open):
    member_id: str
    change_code: int
    reason_code: int | None
    organization_code: str
    effective_on: str
    recorded_at: str
    position: int


class RollChanges(Open):
    items: list[RollChange]
    page: int
    page_size: int
    total: int


class StatementLine(Open):
    # None on the balance sheet's line of income and expenditure not yet closed (收支结余).
    account_code: str | None
    account_name: str


class Statement(Open):
    organization_code: str
    scope: str
    lines: list[StatementLine]
    totals: dict[str, Any]
    position: int


class JournalLine(Open):
    voucher_id: str
    number: str | None = None
    effective_on: str
    account_code: str
    debit: str
    credit: str
    description: str | None
    position: int
    recorded_at: str


class Journal(Open):
    items: list[JournalLine]
    page: int
    page_size: int
    total: int


class AuditEvent(Open):
    position: int
    recorded_at: str | None
    stream_id: str
    version: int
    type: str
    data: dict[str, Any] | None
    actor: str | None


class AuditEvents(Open):
    items: list[AuditEvent]
    after: int
    limit: int
    next_after: int | None


class Seal(Open):
    position: int
    chain_hash: str
    signature: str
    sealed_at: str


class Seals(Open):
    items: list[Seal]
    total: int


class Verification(Open):
    ok: bool
    verified_through: int
    seals_checked: int
    sealed_through: int
    first_bad_position: int | None
    reason: str
    cached: bool
