"""会计报表: 资产负债表 (工会01表), 收入支出表 (工会02表), the trial balance and the journal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.exporting import TABLE_FORMATS, export, header_block, shown, statement_answer
from api.json_answer import JsonAnswer
from api.models.common import ERRORS
from api.models.reads import Journal, Statement
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
ConsolidatedParam = Annotated[
    bool,
    Query(
        description="with scope=subtree: net what moved inside the subtree (合并) instead of the"
        " plain sum (汇总)"
    ),
]
AccountParam = Annotated[
    str | None,
    Query(
        max_length=8,
        pattern=r"^[0-9]{3,8}$",
        description="an account and its subaccounts",
        examples=["504"],
    ),
]


@router.get("/statements/balance-sheet", response_model=Statement, responses=TABLES)
def balance_sheet(
    caller: Reader,
    code: str,
    as_of: DayParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    consolidated: ConsolidatedParam = False,
    format: FormatParam = "json",
) -> Response:
    """工会01表: assets, liabilities and net assets by account, each with 年初数 (`opening`)
    and 期末数 (`closing`); totals in both columns; `balanced`; `position`."""
    caller.require_org(code)
    day = day_or_today(as_of, "as_of")
    found = caller.services.caught_up().balance_sheet(
        code,
        as_of=day,
        known_at=parse_known_at(known_at),
        scope=scope,
        consolidated=consolidated,
    )
    return statement_answer(
        caller,
        format,
        found,
        "GET /v1/organizations/{code}/statements/balance-sheet",
        layouts.balance_sheet,
        code=code,
        when=("截至", str(day)),
        filename=f"balance-sheet-{code}-{day}",
    )


@router.get("/statements/income-expenditure", response_model=Statement, responses=TABLES)
def income_expenditure(
    caller: Reader,
    code: str,
    from_: FromParam = None,
    to: ToParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    consolidated: ConsolidatedParam = False,
    format: FormatParam = "json",
) -> Response:
    """工会02表: income and expenditure by account with earmarked and general parts, for the
    period and as 本月数 (`month`) and 本年累计数 (`year_to_date`) of `to`; totals; surplus."""
    caller.require_org(code)
    start, end = period(from_, to)
    found = caller.services.caught_up().income_expenditure(
        code,
        date_from=start,
        date_to=end,
        known_at=parse_known_at(known_at),
        scope=scope,
        consolidated=consolidated,
    )
    return statement_answer(
        caller,
        format,
        found,
        "GET /v1/organizations/{code}/statements/income-expenditure",
        layouts.income_expenditure,
        code=code,
        when=("期间", f"{start} 至 {end}"),
        filename=f"income-expenditure-{code}-{start}-{end}",
    )


@router.get("/statements/trial-balance", response_model=Statement, responses=TABLES)
def trial_balance(
    caller: Reader,
    code: str,
    from_: FromParam = None,
    to: ToParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    consolidated: ConsolidatedParam = False,
    format: FormatParam = "json",
) -> Response:
    """科目余额表: per account opening, debit, credit, closing; totals."""
    caller.require_org(code)
    start, end = period(from_, to)
    found = caller.services.caught_up().trial_balance(
        code,
        date_from=start,
        date_to=end,
        known_at=parse_known_at(known_at),
        scope=scope,
        consolidated=consolidated,
    )
    return statement_answer(
        caller,
        format,
        found,
        "GET /v1/organizations/{code}/statements/trial-balance",
        layouts.trial_balance,
        code=code,
        when=("期间", f"{start} 至 {end}"),
        filename=f"trial-balance-{code}-{start}-{end}",
    )


@router.get("/journal", response_model=Journal, responses=TABLES)
def journal(
    caller: Reader,
    code: str,
    from_: FromParam = None,
    to: ToParam = None,
    known_at: KnownAtParam = None,
    scope: ScopeParam = "self",
    account_code: AccountParam = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
    format: FormatParam = "json",
) -> Response:
    """序时账: voucher_id, effective_on, account_code, debit, credit, description, position,
    recorded_at; paged in JSON, whole in CSV and XLSX. `account_code` keeps an account and its
    subaccounts."""
    caller.require_org(code)
    start, end = period(from_, to)
    moment = parse_known_at(known_at)
    read_models = caller.services.caught_up()
    route = "GET /v1/organizations/{code}/journal"
    purpose = f"{route} format={format}"
    # 摘要 is free text: an identity or mobile number typed into it is masked.
    if format == "json":
        found = read_models.journal(
            code,
            date_from=start,
            date_to=end,
            known_at=moment,
            scope=scope,
            page=page,
            page_size=page_size,
            account_code=account_code,
        )
        return JsonAnswer(present(caller, found, purpose))
    chunks = read_models.whole_journal(
        code, date_from=start, date_to=end, known_at=moment, scope=scope, account_code=account_code
    )
    header = header_block(
        caller,
        code,
        ("期间", f"{start} 至 {end}" + (f"，科目 {account_code}" if account_code else "")),
        scope=scope,
        known_at=known_at,
        position=read_models.position(),
        money=True,
    )
    query = f"from={start} to={end} scope={scope} account={account_code} known_at={known_at}"
    lines, rows = shown(caller, header, chunks, route=route, query=query, fmt=format)
    document = layouts.journal(lines, rows)
    return export(format, document, f"journal-{code}-{start}-{end}")
