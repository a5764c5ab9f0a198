"""会计报表: 资产负债表 (工会01表), 收入支出表 (工会02表), the trial balance and the journal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.exporting import TABLE_FORMATS, tabular
from api.models.common import ERRORS
from api.models.reads import Journal, Statement
from api.presenting import present_table
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
from projections.reports.exports import (
    BALANCE_SHEET_COLUMNS,
    INCOME_COLUMNS,
    JOURNAL_COLUMNS,
    TRIAL_BALANCE_COLUMNS,
)

router = APIRouter(prefix="/v1/organizations/{code}", tags=["statements"], responses=ERRORS)
FromParam = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=10,
        examples=["2024-01-01"],
        description="YYYY-MM-DD (default: 1 January)",
    ),
]
ToParam = Annotated[
    str | None,
    Query(max_length=10, examples=["2024-06-30"], description="YYYY-MM-DD (default: today)"),
]
TABLES = {200: {"content": TABLE_FORMATS}}


def _subtitle(caller: Reader, fmt: str, code: str, when: str, scope: str) -> str:
    """A table's subtitle (CSV, XLSX). JSON shows none: the organisation is not loaded."""
    if fmt == "json":
        return ""
    name = caller.services.read_models.organization(code)["name"]
    return f"{name} ({code}) {when}" + (" 含下级汇总" if scope == "subtree" else "")


def _shown(
    caller: Reader, found: dict, fmt: str, code: str, when: str, scope: str, route: str
) -> tuple[dict, str]:
    """The answer and its heading as the caller may see them (masked, or recorded as read)."""
    return present_table(
        caller,
        found,
        _subtitle(caller, fmt, code, when, scope),
        f"GET /v1/organizations/{{code}}/{route} format={fmt}",
    )


@router.get("/statements/balance-sheet", response_model=Statement, responses=TABLES)
def balance_sheet(
    caller: Reader,
    code: str,
    as_of: DayParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    format: FormatParam = "json",
) -> Response:
    """工会01表: assets, liabilities and net assets by account; totals; `balanced`."""
    caller.require_org(code)
    day = day_or_today(as_of, "as_of")
    found = caller.services.caught_up().balance_sheet(
        code, as_of=day, known_at=parse_known_at(known_at), scope=scope
    )
    body, subtitle = _shown(
        caller, found, format, code, f"截至 {day}", scope, "statements/balance-sheet"
    )
    return tabular(
        format,
        body,
        rows=body["lines"],
        filename=f"balance-sheet-{code}-{day}",
        title="资产负债表 (工会01表)",
        subtitle=subtitle,
        columns=BALANCE_SHEET_COLUMNS,
    )


@router.get("/statements/income-expenditure", response_model=Statement, responses=TABLES)
def income_expenditure(
    caller: Reader,
    code: str,
    from_: FromParam = None,
    to: ToParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    format: FormatParam = "json",
) -> Response:
    """工会02表: income and expenditure by account, earmarked and general columns, surplus."""
    caller.require_org(code)
    start, end = period(from_, to)
    found = caller.services.caught_up().income_expenditure(
        code, date_from=start, date_to=end, known_at=parse_known_at(known_at), scope=scope
    )
    body, subtitle = _shown(
        caller, found, format, code, f"{start} 至 {end}", scope, "statements/income-expenditure"
    )
    return tabular(
        format,
        body,
        rows=body["lines"],
        filename=f"income-expenditure-{code}",
        title="收入支出表 (工会02表)",
        subtitle=subtitle,
        columns=INCOME_COLUMNS,
    )


@router.get("/statements/trial-balance", response_model=Statement, responses=TABLES)
def trial_balance(
    caller: Reader,
    code: str,
    from_: FromParam = None,
    to: ToParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    format: FormatParam = "json",
) -> Response:
    """科目余额表: per account opening, debit, credit, closing; totals."""
    caller.require_org(code)
    start, end = period(from_, to)
    found = caller.services.caught_up().trial_balance(
        code, date_from=start, date_to=end, known_at=parse_known_at(known_at), scope=scope
    )
    body, subtitle = _shown(
        caller, found, format, code, f"{start} 至 {end}", scope, "statements/trial-balance"
    )
    return tabular(
        format,
        body,
        rows=body["lines"],
        filename=f"trial-balance-{code}",
        title="科目余额表",
        subtitle=subtitle,
        columns=TRIAL_BALANCE_COLUMNS,
    )


@router.get("/journal", response_model=Journal, responses=TABLES)
def journal(
    caller: Reader,
    code: str,
    from_: FromParam = None,
    to: ToParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    account_code: Annotated[
        str | None,
        Query(
            max_length=8,
            pattern=r"^[0-9]+$",
            examples=["402"],
            description="an account and its subaccounts",
        ),
    ] = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
    format: FormatParam = "json",
) -> Response:
    """序时账: voucher_id, effective_on, account_code, debit, credit, description, position,
    recorded_at (paged); `account_code` keeps that account's lines and its subaccounts'."""
    caller.require_org(code)
    start, end = period(from_, to)
    # 摘要 is free text: an identity or mobile number typed into it is masked.
    found = caller.services.caught_up().journal(
        code,
        date_from=start,
        date_to=end,
        known_at=parse_known_at(known_at),
        scope=scope,
        page=page,
        page_size=page_size,
        account_code=account_code,
    )
    body, subtitle = _shown(caller, found, format, code, f"{start} 至 {end}", scope, "journal")
    return tabular(
        format,
        body,
        rows=body["items"],
        filename=f"journal-{code}",
        title="序时账",
        subtitle=subtitle,
        columns=JOURNAL_COLUMNS,
    )
