"""会员名册: the roll, its summary and its changes, as of a date and as known at a time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.exporting import TABLE_FORMATS, export, header_block, shown
from api.json_answer import JsonAnswer
from api.models.common import ERRORS
from api.models.reads import RollChanges, RollPage, RollSummary
from api.presenting import present
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
from projections.reports import layouts

router = APIRouter(prefix="/v1/organizations/{code}/roll", tags=["rolls"], responses=ERRORS)
ROLL_ROUTE = "GET /v1/organizations/{code}/roll"
CHANGES_ROUTE = "GET /v1/organizations/{code}/roll/changes"
StatusParam = Annotated[Literal["active", "retained", "transfer_pending"] | None, Query()]


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
    """The members on the roll on `as_of` (paged in JSON: items, page, page_size, total;
    whole in CSV and XLSX)."""
    caller.require_org(code)
    day = day_or_today(as_of, "as_of")
    moment = parse_known_at(known_at)
    read_models = caller.services.caught_up()
    purpose = f"{ROLL_ROUTE} format={format}"
    if format == "json":
        found = read_models.roll(
            code,
            as_of=day,
            known_at=moment,
            scope=scope,
            status=status,
            page=page,
            page_size=page_size,
        )
        return JsonAnswer(present(caller, found, purpose))
    chunks = read_models.whole_roll(code, as_of=day, known_at=moment, scope=scope, status=status)
    when = ("截至", str(day) + (f"，会籍状态 {status}" if status else ""))
    header = header_block(
        caller, code, when, scope=scope, known_at=known_at, position=read_models.position()
    )
    query = f"as_of={day} scope={scope} status={status} known_at={known_at}"
    lines, rows = shown(caller, header, chunks, route=ROLL_ROUTE, query=query, fmt=format)
    document = layouts.roll(lines, rows, unmasked=caller.pii)
    return export(format, document, f"roll-{code}-{day}")


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
    """会籍变化 in the period, with change codes (1 入会 ... 6 退会); paged in JSON, whole in
    CSV and XLSX."""
    caller.require_org(code)
    start, end = period(from_, to)
    moment = parse_known_at(known_at)
    read_models = caller.services.caught_up()
    purpose = f"{CHANGES_ROUTE} format={format}"
    if format == "json":
        found = read_models.roll_changes(
            code,
            date_from=start,
            date_to=end,
            known_at=moment,
            scope=scope,
            page=page,
            page_size=page_size,
        )
        return JsonAnswer(present(caller, found, purpose))
    chunks = read_models.whole_roll_changes(
        code, date_from=start, date_to=end, known_at=moment, scope=scope
    )
    header = header_block(
        caller,
        code,
        ("期间", f"{start} 至 {end}"),
        scope=scope,
        known_at=known_at,
        position=read_models.position(),
    )
    query = f"from={start} to={end} scope={scope} known_at={known_at}"
    lines, rows = shown(caller, header, chunks, route=CHANGES_ROUTE, query=query, fmt=format)
    return export(format, layouts.roll_changes(lines, rows), f"roll-changes-{code}-{start}-{end}")
