"""The console's pages. Each reads through the query code the API's routers use (the read
models, the ledger, the audit trail), checks the caller as they do (api/security.py) and shows
what present() lets the token see (masked, or recorded as an unmasked read)."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.console import charts, formatting, session
from api.errors import ApiProblem, Forbidden
from api.presenting import present
from api.queries import day_or_today, parse_known_at, period
from api.routers import rolls as roll_router
from api.routers import statements as statement_router
from api.security import AUDITORS, Caller
from api.services import Services
from domain.accounts import ACCOUNTS
from domain.errors import InvalidValue, NotFound, RuleViolation
from projections.audit.events import is_person_topic, mask_record
from projections.reports import layouts
from storage.clock import today_in_china
from storage.payload_binding import PayloadBindingError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["money"] = formatting.money
templates.env.filters["day"] = formatting.day
templates.env.filters["moment"] = formatting.moment
templates.env.filters["pretty"] = formatting.pretty

router = APIRouter(include_in_schema=False)

LEVEL_NAMES = {
    "national": "全国",
    "province": "省级",
    "city": "市级",
    "county": "县级",
    "township": "乡镇（街道）",
    "base": "基层",
    "joint_base": "联合基层",
}
STATUS_NAMES = {
    "active": "在册",
    "retained": "保留会籍",
    "transfer_pending": "转出待接收",
    "left": "已离会",
    "dissolved": "已撤销",
}
STATEMENTS = {
    "balance-sheet": "资产负债表（工会01表）",
    "income-expenditure": "收入支出表（工会02表）",
    "trial-balance": "科目余额表",
}
VOUCHER_KINDS = {
    "dues": "会费收入",
    "levy": "拨缴经费收入",
    "founding_reserve": "筹备金",
    "founding_reserve_release": "筹备金转出",
    "remittance": "经费上解/下拨",
    "subsidy": "补助",
    "expense": "支出",
    "reversal": "红字冲销",
    "year_end": "年终结账",
}
TOTAL_NAMES = {
    "assets": "资产合计",
    "liabilities": "负债合计",
    "net_assets": "净资产合计",
    "income": "收入合计",
    "expenditure": "支出合计",
    "surplus": "收支结余",
    "liabilities_and_net_assets": "负债和净资产合计",
    "debit": "借方合计",
    "credit": "贷方合计",
    "opening_difference": "期初借贷差额",
    "closing_difference": "期末借贷差额",
    "income_earmarked": "收入（专项）",
    "income_general": "收入（非专项）",
    "expenditure_earmarked": "支出（专项）",
    "expenditure_general": "支出（非专项）",
    "surplus_earmarked": "结余（专项）",
    "surplus_general": "结余（非专项）",
}
# Accounts shown at a glance on an organisation's page.
BANK = "102"
PAYABLES = ("211", "212", "215")
PAGE_SIZE = 50

templates.env.globals.update(
    LEVEL_NAMES=LEVEL_NAMES,
    STATUS_NAMES=STATUS_NAMES,
    STATEMENTS=STATEMENTS,
    ACCOUNTS=ACCOUNTS,
    VOUCHER_KINDS=VOUCHER_KINDS,
    TOTAL_NAMES=TOTAL_NAMES,
)


def _columns(columns: Any) -> list[tuple[str, str]]:
    """(key, heading) of an export's columns: the console's tables show the same ones."""
    return [(column.key, column.heading) for column in columns]


PART_NAMES = {
    "opening": "年初数",
    "closing": "期末数",
    "month": "本月数",
    "year_to_date": "本年累计数",
}


def flat_totals(totals: dict[str, Any]) -> dict[str, Any]:
    """A statement's totals as one level of named figures: the balance sheet's {opening,
    closing} pairs and 02表's month and year-to-date groups become a figure each."""
    flat: dict[str, Any] = {}
    for key, value in totals.items():
        if not isinstance(value, dict):
            flat[key] = value
        elif key in PART_NAMES:  # 02表: {"income": …, …} for the month or the year so far
            for inner, figure in value.items():
                flat[f"{PART_NAMES[key]}{TOTAL_NAMES.get(inner, inner)}"] = figure
        else:  # 01表: {"opening": …, "closing": …}
            for part, figure in value.items():
                flat[f"{TOTAL_NAMES.get(key, key)}（{PART_NAMES.get(part, part)}）"] = figure
    return flat


class Page:
    """A page to render: a template and what it shows."""

    def __init__(self, template: str, **context: Any) -> None:
        self.template = template
        self.context = context


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def _security_headers(response: Response) -> Response:
    # Nothing from another host, no framing, no caching of personal data.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on a form
    # POST, which the CSRF check cannot tell from a cross-site one.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    caller: Caller | None = None,
) -> Response:
    csrf = session.csrf_value(request)
    response = templates.TemplateResponse(
        request,
        template,
        {"caller": caller, "csrf": csrf, "principal": caller.principal if caller else None}
        | context,
        status_code=status_code,
    )
    session.set_csrf(request, response, csrf)
    return _security_headers(response)


def _error(request: Request, status: int, message: str, caller: Caller | None) -> Response:
    titles = {
        400: "请求有误",
        403: "无权访问",
        404: "未找到",
        409: "当前状态不允许",
        422: "填写有误",
        429: "请求过于频繁",
    }
    return _render(
        request,
        "error.html",
        {"title": titles.get(status, "出错了"), "message": message, "status": status},
        status_code=status,
        caller=caller,
    )


def _to_sign_in(request: Request) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return _security_headers(
        RedirectResponse("/console/sign-in?" + urlencode({"next": target}), status_code=303)
    )


async def _page(request: Request, build: Callable[[Caller], Page | Response]) -> Response:
    """Signs the caller in from the cookie, builds the page in a worker thread (the store is
    read there) and renders it; refusals and bad input become a page saying so."""
    caller = await session.session_caller(request, _services(request))
    if caller is None:
        return _to_sign_in(request)
    try:
        built = await run_in_threadpool(build, caller)
    except ApiProblem as exc:
        return _error(request, exc.status, exc.detail, caller)
    except NotFound as exc:
        return _error(request, 404, str(exc), caller)
    except InvalidValue as exc:
        return _error(request, 422, str(exc), caller)
    except RuleViolation as exc:
        return _error(request, 409, str(exc), caller)
    if isinstance(built, Response):
        return built
    return _render(request, built.template, built.context, caller=caller)


def _organization(caller: Caller, code: str) -> dict[str, Any]:
    """The organisation, if within the caller's scope, as the caller may see it."""
    caller.require_org(code)
    found = caller.services.caught_up().organization(code)
    shown: dict[str, Any] = present(caller, found, "console organisation")
    return shown


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


# --- signing in and out ----------------------------------------------------------------------


@router.get("/", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse("/console", status_code=303)


def _safe_next(target: str | None) -> str:
    # Only a path of this server: never another host (open redirect).
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"


@router.get("/console/sign-in", response_class=HTMLResponse)
async def sign_in_form(request: Request, next: str | None = None) -> Response:
    return _render(request, "sign_in.html", {"next": _safe_next(next), "message": None})


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    try:
        session.check_form(request, form.get(session.CSRF_FIELD))
    except Forbidden as exc:
        return _error(request, 403, exc.detail, None)
    token = form.get("token")
    target = _safe_next(str(form.get("next") or ""))
    principal = None
    if isinstance(token, str) and 0 < len(token.strip()) <= 512:
        principal = await session.verified(_services(request), token.strip())
    if principal is None:
        return _render(
            request,
            "sign_in.html",
            {"next": target, "message": "令牌无效、已过期或已被吊销。"},
            status_code=401,
        )
    assert isinstance(token, str)
    response = RedirectResponse(target, status_code=303)
    session.sign_in(request, response, token.strip())
    return _security_headers(response)


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    form = await request.form()
    try:
        session.check_form(request, form.get(session.CSRF_FIELD))
    except Forbidden as exc:
        return _error(request, 403, exc.detail, None)
    response = RedirectResponse("/console/sign-in", status_code=303)
    session.sign_out(request, response)
    return _security_headers(response)


# --- finding organisations -------------------------------------------------------------------


@router.get("/console", response_class=HTMLResponse)
async def home(request: Request, q: str | None = None, page: int = 1) -> Response:
    def build(caller: Caller) -> Page:
        text = (q or "").strip() or None
        if text is not None and (len(text) > 50 or any(ord(c) < 32 or ord(c) == 127 for c in text)):
            raise InvalidValue("q", "名称或代码的一部分，至多 50 个字")
        lookup = caller.services.caught_up().organizations.lookup
        scope = caller.principal.organization_code
        found = None
        if text is not None:
            found = present(
                caller,
                lookup(
                    within=scope,
                    day=today_in_china(),
                    q=text,
                    page=max(1, min(page, 1_000_000)),
                    page_size=PAGE_SIZE,
                ),
                "console GET /v1/organizations",
            )
        tops: list[dict[str, Any]] = []
        if scope is not None:
            tops = [_organization(caller, scope)]
        else:
            for level in LEVEL_NAMES:
                top = lookup(within=None, day=today_in_china(), level=level, page_size=20)
                if top["items"]:
                    tops = present(caller, top, "console GET /v1/organizations")["items"]
                    break
        return Page("home.html", q=text or "", found=found, tops=tops, page=page)

    return await _page(request, build)


# --- an organisation -------------------------------------------------------------------------


@router.get("/console/organizations/{code}", response_class=HTMLResponse)
async def organization(request: Request, code: str) -> Response:
    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        read = caller.services.caught_up()
        today = today_in_china()
        # Members over the union and every union below it (a county's are in its base unions).
        summary = present(
            caller,
            read.roll_summary(code, as_of=today, scope="subtree"),
            "console GET roll/summary",
        )
        by_status = {
            status: read.roll(
                code, as_of=today, scope="subtree", status=status, page=1, page_size=1
            )["total"]
            for status in ("active", "retained", "transfer_pending")
        }
        sheet = read.balance_sheet(code, as_of=today)
        amounts = {line["account_code"]: line["amount"] for line in sheet["lines"]}
        children = present(
            caller,
            read.organizations.children(code, day=today, page=1, page_size=200),
            "console GET /v1/organizations/{code}/children",
        )
        return Page(
            "organization.html",
            org=org,
            summary=summary,
            by_status=by_status,
            bank=amounts.get(BANK, "0.00"),
            payables=[(acct, ACCOUNTS[acct].name, amounts.get(acct, "0.00")) for acct in PAYABLES],
            children=children,
            today=today.isoformat(),
            year=today.year,
            since=formatting.day(org.get("founded_on")) or "2000-01-01",
            rate=formatting.percent(summary.get("membership_rate")),
        )

    return await _page(request, build)


@router.get("/console/organizations/{code}/roll", response_class=HTMLResponse)
async def roll(
    request: Request,
    code: str,
    as_of: str | None = None,
    known_at: str | None = None,
    scope: str | None = None,
    page: int = 1,
) -> Response:
    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        day = day_or_today(as_of or None, "as_of")
        moment = formatting.known_at_param(known_at)
        which = _scope(scope)
        page_no = max(1, min(page, 1_000_000))
        found = caller.services.caught_up().roll(
            code,
            as_of=day,
            known_at=parse_known_at(moment),
            scope=which,
            page=page_no,
            page_size=PAGE_SIZE,
        )
        body = present(caller, found, "console GET /v1/organizations/{code}/roll")
        params = _query(as_of=day.isoformat(), known_at=moment, scope=which)
        return Page(
            "roll.html",
            scope=which,
            org=org,
            roll=body,
            columns=_columns(layouts.ROLL_COLUMNS_UNMASKED if caller.pii else layouts.ROLL_COLUMNS),
            as_of=day.isoformat(),
            known_at=moment,
            picker=formatting.picker_value(moment),
            params=params,
            page=page_no,
            pages=max(1, -(-body["total"] // PAGE_SIZE)),
        )

    return await _page(request, build)


@router.get("/console/organizations/{code}/changes", response_class=HTMLResponse)
async def changes(
    request: Request,
    code: str,
    to: str | None = None,
    scope: str | None = None,
    page: int = 1,
) -> Response:
    from_ = request.query_params.get("from")

    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        start, end = period(from_ or None, to or None)
        which = _scope(scope)
        page_no = max(1, min(page, 1_000_000))
        found = caller.services.caught_up().roll_changes(
            code, date_from=start, date_to=end, scope=which, page=page_no, page_size=PAGE_SIZE
        )
        body = present(caller, found, "console GET /v1/organizations/{code}/roll/changes")
        return Page(
            "changes.html",
            org=org,
            changes=body,
            columns=_columns(layouts.CHANGE_COLUMNS),
            start=start.isoformat(),
            end=end.isoformat(),
            scope=which,
            params=_query(**{"from": start.isoformat(), "to": end.isoformat()}, scope=which),
            page=page_no,
            pages=max(1, -(-body["total"] // PAGE_SIZE)),
        )

    return await _page(request, build)


@router.get("/console/organizations/{code}/export/{what}.{fmt}")
async def export(request: Request, code: str, what: str, fmt: str) -> Response:
    """The whole file, answered by the API's own handler (same columns, masking, records)."""
    params = request.query_params

    def build(caller: Caller) -> Response:
        if fmt not in ("csv", "xlsx"):
            raise NotFound("no such export")
        known_at = formatting.known_at_param(params.get("known_at"))
        if what == "roll":
            return roll_router.roll(
                caller,
                code,
                as_of=params.get("as_of"),
                known_at=known_at,
                scope=_scope(params.get("scope")),  # type: ignore[arg-type]
                status=None,
                page=1,
                page_size=100,
                format=fmt,  # type: ignore[arg-type]
            )
        if what == "changes":
            return roll_router.roll_changes(
                caller,
                code,
                from_=params.get("from"),
                to=params.get("to"),
                known_at=None,
                scope=_scope(params.get("scope")),  # type: ignore[arg-type]
                page=1,
                page_size=100,
                format=fmt,  # type: ignore[arg-type]
            )
        scope = _scope(params.get("scope"))
        if what == "balance-sheet":
            return statement_router.balance_sheet(
                caller,
                code,
                as_of=params.get("as_of"),
                known_at=known_at,
                scope=scope,
                format=fmt,  # type: ignore[arg-type]
            )
        if what in ("income-expenditure", "trial-balance"):
            handler = (
                statement_router.income_expenditure
                if what == "income-expenditure"
                else statement_router.trial_balance
            )
            return handler(
                caller,
                code,
                from_=params.get("from"),
                to=params.get("to"),
                known_at=known_at,
                scope=scope,
                format=fmt,  # type: ignore[arg-type]
            )
        raise NotFound("no such export")

    return await _page(request, build)


# --- statements, journal, vouchers -----------------------------------------------------------


def _scope(text: str | None) -> str:
    if text in (None, "", "self"):
        return "self"
    if text == "subtree":
        return "subtree"
    raise InvalidValue("scope", "self 或 subtree")


def _statement(
    caller: Caller,
    kind: str,
    code: str,
    *,
    as_of: str | None,
    date_from: str | None,
    date_to: str | None,
    known_at: str | None,
    scope: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """One statement as the API's handler reads it, and the period it covers."""
    read = caller.services.caught_up()
    moment = parse_known_at(known_at)
    if kind == "balance-sheet":
        day = day_or_today(as_of or None, "as_of")
        found = read.balance_sheet(code, as_of=day, known_at=moment, scope=scope)
        when = {"as_of": day.isoformat()}
    elif kind in ("income-expenditure", "trial-balance"):
        start, end = period(date_from or None, date_to or None)
        query = read.income_expenditure if kind == "income-expenditure" else read.trial_balance
        found = query(code, date_from=start, date_to=end, known_at=moment, scope=scope)
        when = {"from": start.isoformat(), "to": end.isoformat()}
    else:
        raise NotFound("no such statement")
    shown: dict[str, Any] = present(caller, found, f"console GET statements/{kind}")
    return {**shown, "totals": flat_totals(shown["totals"])}, when


@router.get("/console/organizations/{code}/statements/{kind}", response_class=HTMLResponse)
async def statement(request: Request, code: str, kind: str) -> Response:
    params = request.query_params

    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        scope = _scope(params.get("scope"))
        known_at = formatting.known_at_param(params.get("known_at"))
        found, when = _statement(
            caller,
            kind,
            code,
            as_of=params.get("as_of"),
            date_from=params.get("from"),
            date_to=params.get("to"),
            known_at=known_at,
            scope=scope,
        )
        journal_from = when.get("from") or formatting.day(org.get("founded_on")) or "2000-01-01"
        journal_to = when.get("to") or when["as_of"]
        return Page(
            "statement.html",
            org=org,
            kind=kind,
            title=STATEMENTS[kind],
            statement=found,
            when=when,
            scope=scope,
            known_at=known_at,
            picker=formatting.picker_value(known_at),
            journal_query=_query(
                **{"from": journal_from, "to": journal_to, "known_at": known_at, "scope": scope}
            ),
            export_query=_query(**when, known_at=known_at, scope=scope),
        )

    return await _page(request, build)


@router.get("/console/organizations/{code}/compare/{kind}", response_class=HTMLResponse)
async def compare(request: Request, code: str, kind: str) -> Response:
    """One statement as known at two moments, side by side, differences marked."""
    params = request.query_params

    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        scope = _scope(params.get("scope"))
        moments = [
            formatting.known_at_param(params.get(name)) for name in ("known_at_a", "known_at_b")
        ]
        sides = [
            _statement(
                caller,
                kind,
                code,
                as_of=params.get("as_of"),
                date_from=params.get("from"),
                date_to=params.get("to"),
                known_at=moment,
                scope=scope,
            )
            for moment in moments
        ]
        (first, when), (second, _) = sides
        column = {"trial-balance": "closing"}.get(kind, "amount")
        later = {line["account_code"]: line for line in second["lines"]}
        rows = []
        for line in first["lines"]:
            other = later.get(line["account_code"], {})
            rows.append(
                {
                    "account_code": line["account_code"],
                    "account_name": line["account_name"],
                    "a": line.get(column),
                    "b": other.get(column),
                    "changed": line.get(column) != other.get(column),
                }
            )
        later_totals = second.get("totals", {})
        totals = [
            {"name": TOTAL_NAMES.get(key, key), "a": value, "b": later_totals.get(key)}
            for key, value in first.get("totals", {}).items()
        ]
        for row in totals:
            row["changed"] = row["a"] != row["b"]
        return Page(
            "compare.html",
            totals=totals,
            org=org,
            kind=kind,
            title=STATEMENTS[kind],
            rows=rows,
            when=when,
            scope=scope,
            moments=moments,
            pickers=[formatting.picker_value(m) for m in moments],
            changed=sum(row["changed"] for row in rows) + sum(row["changed"] for row in totals),
            column=column,
        )

    return await _page(request, build)


@router.get("/console/organizations/{code}/journal", response_class=HTMLResponse)
async def journal(request: Request, code: str) -> Response:
    params = request.query_params

    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        scope = _scope(params.get("scope"))
        known_at = formatting.known_at_param(params.get("known_at"))
        start, end = period(params.get("from") or None, params.get("to") or None)
        account = params.get("account_code") or None
        try:
            page_no = max(1, min(int(params.get("page") or 1), 1_000_000))
        except ValueError:
            raise InvalidValue("page", "a page number") from None
        found = caller.services.caught_up().journal(
            code,
            date_from=start,
            date_to=end,
            known_at=parse_known_at(known_at),
            scope=scope,
            page=page_no,
            page_size=PAGE_SIZE,
            account_code=account,
        )
        body: dict[str, Any] = present(
            caller, found, "console GET /v1/organizations/{code}/journal"
        )
        return Page(
            "journal.html",
            org=org,
            journal=body,
            account=account,
            account_name=ACCOUNTS[account].name if account else None,
            start=start.isoformat(),
            end=end.isoformat(),
            known_at=known_at,
            scope=scope,
            params=_query(
                **{"from": start.isoformat(), "to": end.isoformat()},
                known_at=known_at,
                scope=scope,
                account_code=account,
            ),
            page=page_no,
            pages=max(1, -(-body["total"] // PAGE_SIZE)),
        )

    return await _page(request, build)


@router.get("/console/vouchers/{voucher_id}", response_class=HTMLResponse)
async def voucher(request: Request, voucher_id: str) -> Response:
    def build(caller: Caller) -> Page:
        try:
            stream = uuid.UUID(voucher_id)
        except ValueError:
            raise NotFound(f"voucher {voucher_id[:40]} not found") from None
        unreadable = None
        try:
            found = caller.services.ledger.get_voucher(str(stream))
        except PayloadBindingError as exc:
            # Its stored events were altered: a finding for a deployment-wide auditor, whose
            # page then shows the events and their broken links; nobody else can be shown
            # whose books it touched.
            if caller.principal.organization_code is not None:
                raise NotFound(f"voucher {voucher_id[:40]} not found") from None
            unreadable = str(exc)
            found = {"voucher_id": str(stream), "postings": [], "details": None}
        codes = sorted({p["organization_code"] for p in found["postings"]})
        # Seen by a caller whose scope covers any organisation whose books it touches.
        if unreadable is None and not any(caller.covers(c) for c in codes):
            raise NotFound(f"voucher {voucher_id[:40]} not found")
        shown = present(caller, found, "console GET /v1/funds/vouchers/{voucher_id}")
        events = None
        if caller.principal.role in AUDITORS:
            traced = caller.services.audit.trace(stream, unmasked=True)
            members = [e["stream_id"] for e in traced if is_person_topic(e["type"])]
            events = present(
                caller,
                {"items": traced},
                "console GET /v1/audit/events",
                members,
                masker=lambda body: {"items": [mask_record(e) for e in body["items"]]},
            )["items"]
        return Page(
            "voucher.html", voucher=shown, events=events, codes=codes, unreadable=unreadable
        )

    return await _page(request, build)


# --- charts ----------------------------------------------------------------------------------

MEMBER_SERIES = (("入会", (1,)), ("转入", (2,)), ("转出", (4,)), ("离会（除名、退会）", (5, 6)))


@router.get("/console/organizations/{code}/charts", response_class=HTMLResponse)
async def chart_page(request: Request, code: str) -> Response:
    """Members over time and the period's fund flow, drawn from the read models' figures."""
    params = request.query_params

    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        scope = _scope(params.get("scope") or "subtree")
        start, end = period(params.get("from") or None, params.get("to") or None)
        if (end.year - start.year) * 12 + end.month - start.month >= 36:
            raise InvalidValue("from", "图表的期间至多 36 个月")
        read = caller.services.caught_up()
        months = read.roll_changes_by_month(code, date_from=start, date_to=end, scope=scope)
        series = [
            (name, [sum(m["counts"].get(c, 0) for c in codes) for m in months])
            for name, codes in MEMBER_SERIES
        ]
        labels = [m["month"] for m in months]
        # Members on the roll at the end of the period, per child union with those below it.
        children = present(
            caller,
            read.organizations.children(code, day=today_in_china(), page=1, page_size=200),
            "console GET /v1/organizations/{code}/children",
        )
        per_child = [
            charts.Bar(
                child["name"],
                str(read.roll_summary(child["code"], as_of=end, scope="subtree")["members"]),
                0,
            )
            for child in children["items"]
        ]
        income = read.income_expenditure(code, date_from=start, date_to=end, scope=scope)
        trial = read.trial_balance(code, date_from=start, date_to=end, scope=scope)
        debits = {line["account_code"]: line["debit"] for line in trial["lines"]}
        bars: list[charts.Bar] = []
        for kind, group in (("income", 0), ("expenditure", 2)):
            if kind == "expenditure":
                bars += [
                    charts.Bar("上解上级经费（211 借方）", debits.get("211", "0.00"), 1),
                    charts.Bar("下拨下级经费（212 借方）", debits.get("212", "0.00"), 1),
                ]
            bars += [
                charts.Bar(f"{line['account_code']} {line['account_name']}", line["amount"], group)
                for line in income["lines"]
                if line["kind"] == kind
                and len(line["account_code"]) == 3
                and line["amount"] not in ("0.00", "0", "-0.00")
            ]
        return Page(
            "charts.html",
            org=org,
            scope=scope,
            start=start.isoformat(),
            end=end.isoformat(),
            labels=labels,
            series=series,
            members_svg=charts.grouped_bars("members", "会员变化（按月）", labels, series),
            bars=bars,
            per_child=per_child,
            children_svg=charts.horizontal_bars(
                "children", "下级工会会员数", per_child, ["会员数"], written=str
            ),
            flow_svg=charts.horizontal_bars(
                "flow", "经费流向", bars, ["收入", "上解与下拨", "支出"]
            ),
        )

    return await _page(request, build)


# --- verification ----------------------------------------------------------------------------


@router.get("/console/verification", response_class=HTMLResponse)
async def verification(request: Request) -> Response:
    def build(caller: Caller) -> Page:
        if caller.principal.role not in AUDITORS:
            raise Forbidden(f"the {caller.principal.role} role cannot do this")
        caller.require_deployment_wide("verifying the audit chain")
        audit = caller.services.audit
        state = audit.store.state()
        seals = audit.seals()
        result = present(caller, audit.verification(), "console GET /v1/audit/verification")
        return Page(
            "verification.html",
            state=state,
            seals=list(reversed(seals))[:10],
            seal_count=len(seals),
            result=result,
            checked_at=datetime.datetime.now(formatting.CHINA),
        )

    return await _page(request, build)
