"""会员名册: the roll, its summary and its changes, as of a date and as known at a time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.exporting import TABLE_FORMATS, tabular
from api.models.common import ERRORS
from api.models.reads import RollChanges, RollPage, RollSummary
from api.presenting import present, present_table
from api.queries import (
    DayParam,
    FormatParam,
    KnownAtParam,
    PageParam,
    PageSizeParam,
    ScopeParam,
    day_or_today,
    parse_known_at,
    period,
)
from api.security import Reader
from projections.reports.exports import CHANGE_COLUMNS, roll_columns

router = APIRouter(prefix="/v1/organizations/{code}/roll", tags=["rolls"], responses=ERRORS)
StatusParam = Annotated[Literal["active", "retained", "transfer_pending"] | None, Query()]


def _subtitle(caller: Reader, fmt: str, code: str, when: str) -> str:
    """The heading of a file export; JSON has none (the union is not loaded for nothing)."""
    if fmt == "json":
        return ""
    return f"{caller.services.read_models.organization(code)['name']} ({code}) {when}"


@router.get("", response_model=RollPage, responses={200: {"content": TABLE_FORMATS}})
def roll(
    caller: Reader,
    code: str,
    as_of: DayParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    status: StatusParam = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
    format: FormatParam = "json",
) -> Response:
    """The members on the roll on `as_of` (paged: items, page, page_size, total)."""
    caller.require_org(code)
    day = day_or_today(as_of, "as_of")
    found = caller.services.caught_up().roll(
        code,
        as_of=day,
        known_at=parse_known_at(known_at),
        scope=scope,
        status=status,
        page=page,
        page_size=page_size,
    )
    body, subtitle = present_table(
        caller,
        found,
        _subtitle(caller, format, code, f"截至 {day}"),
        f"GET /v1/organizations/{{code}}/roll format={format}",
    )
    return tabular(
        format,
        body,
        rows=body["items"],
        filename=f"roll-{code}-{day}",
        title="工会会员名册",
        subtitle=subtitle,
        columns=roll_columns(unmasked=caller.pii),
    )


@router.get("/summary", response_model=RollSummary)
def roll_summary(
    caller: Reader,
    code: str,
    as_of: DayParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
) -> dict:
    """members, retained, women, migrant_workers, new_employment_form, employees,
    membership_rate (会员/职工)."""
    caller.require_org(code)
    found = caller.services.caught_up().roll_summary(
        code, as_of=day_or_today(as_of, "as_of"), known_at=parse_known_at(known_at), scope=scope
    )
    return present(caller, found, "GET /v1/organizations/{code}/roll/summary")


@router.get("/changes", response_model=RollChanges, responses={200: {"content": TABLE_FORMATS}})
def roll_changes(
    caller: Reader,
    code: str,
    from_: Annotated[
        str | None, Query(alias="from", max_length=10, examples=["2024-01-01"])
    ] = None,
    to: Annotated[str | None, Query(max_length=10, examples=["2024-06-30"])] = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
    format: FormatParam = "json",
) -> Response:
    """会籍变化 in the period, with change codes (1 入会 ... 6 退会)."""
    caller.require_org(code)
    start, end = period(from_, to)
    found = caller.services.caught_up().roll_changes(
        code,
        date_from=start,
        date_to=end,
        known_at=parse_known_at(known_at),
        scope=scope,
        page=page,
        page_size=page_size,
    )
    body, subtitle = present_table(
        caller,
        found,
        _subtitle(caller, format, code, f"{start} 至 {end}"),
        f"GET /v1/organizations/{{code}}/roll/changes format={format}",
    )
    return tabular(
        format,
        body,
        rows=body["items"],
        filename=f"roll-changes-{code}",
        title="会籍变化明细",
        subtitle=subtitle,
        columns=CHANGE_COLUMNS,
    )
