"""The console's 月末对账 pages: a union's runs, one run (its summary per file, every
difference with the ledger's side and the file's side, the monitors, the whole-file exports)
and the sign-off form for auditors and admins.

They read what the API's reconciliation routes read (service/reconciliations.py `list_runs`,
`run_view`, `organization_of`; the report's rows from projections/reconciliation/report.py),
show it through present(), answer exports with the API's own handler and sign off with the
same command (SignOffReconciliation), behind the console's CSRF check.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import session
from api.console.pages import (
    PAGE_SIZE,
    Page,
    _columns,
    _error,
    _organization,
    _page,
    _query,
    _render,
    _security_headers,
    _services,
    _to_sign_in,
    templates,
)
from api.errors import ApiProblem, Forbidden
from api.presenting import present
from api.routers import reconciliations as reconciliation_router
from api.security import AUDITORS, Caller
from domain.errors import IdempotencyKeyReused, InvalidValue, NotFound, RuleViolation
from domain.reconciliation import DIFFERENCE_NAMES, RULE_NAMES
from domain.reconciliation_runs import MAX_NOTE_CHARS
from projections.reconciliation.report import (
    FILE_NAMES,
    STATUS_NAMES,
    SUMMARY_COLUMNS,
    line_rows,
    summary_rows,
)
from service.commands import SignOffReconciliation
from service.idempotency import IdempotencyKey
from service.reconciliations import list_runs, organization_of, run_view
from storage import clock

router = APIRouter(include_in_schema=False)

MONITOR_NAMES = {
    "levy_payable_overdue": "应付经费逾期未解",
    "no_dues": "连续三个月未收会费",
    "employer_without_levy": "税务已代收而账簿无记录的单位",
    "bank_balance_differs": "银行存款余额与对账单不符",
}
PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
KEY_FIELD = "idempotency_key"

templates.env.globals.update(
    RUN_STATUS_NAMES=STATUS_NAMES,
    FILE_NAMES=FILE_NAMES,
    RULE_NAMES=RULE_NAMES,
    DIFFERENCE_NAMES=DIFFERENCE_NAMES,
    MONITOR_NAMES=MONITOR_NAMES,
    MAX_NOTE_CHARS=MAX_NOTE_CHARS,
)


def _may_sign_off(caller: Caller) -> bool:
    return caller.principal.role in AUDITORS


def _run(caller: Caller, run_id: str) -> dict[str, Any]:
    """The run, if its union is within the caller's scope, as the caller may see it (the
    API's GET /v1/reconciliations/{run_id})."""
    ledger = caller.services.ledger
    caller.require_org(organization_of(ledger, run_id))
    shown: dict[str, Any] = present(
        caller, run_view(ledger, run_id), "console GET /v1/reconciliations/{run_id}"
    )
    return shown


@router.get("/console/organizations/{code}/reconciliations", response_class=HTMLResponse)
async def runs(request: Request, code: str) -> Response:
    params = request.query_params

    def build(caller: Caller) -> Page:
        org = _organization(caller, code)
        month = (params.get("period") or "").strip() or None
        if month is not None and not PERIOD.match(month):
            raise InvalidValue("period", "YYYY-MM")
        try:
            page_no = max(1, min(int(params.get("page") or 1), 1_000_000))
        except ValueError:
            raise InvalidValue("page", "a page number") from None
        items, total = list_runs(
            caller.services.ledger,
            code,
            month,
            offset=(page_no - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        body = present(
            caller,
            {"items": items, "page": page_no, "page_size": PAGE_SIZE, "total": total},
            "console GET /v1/reconciliations",
        )
        return Page(
            "reconciliations.html",
            org=org,
            runs=body,
            period=month or "",
            params=_query(period=month),
            page=page_no,
            pages=max(1, -(-total // PAGE_SIZE)),
        )

    return await _page(request, build)


@router.get("/console/reconciliations/{run_id}", response_class=HTMLResponse)
async def run(request: Request, run_id: str) -> Response:
    def build(caller: Caller) -> Page:
        found = _run(caller, run_id)
        return Page(
            "reconciliation.html",
            org=_organization(caller, found["organization_code"]),
            run=found,
            summary=summary_rows(found),
            summary_columns=_columns(SUMMARY_COLUMNS),
            differences=line_rows(found, matches=False, monitors=False),
            may_sign_off=_may_sign_off(caller),
        )

    return await _page(request, build)


@router.get("/console/reconciliations/{run_id}/export.{fmt}")
async def export(request: Request, run_id: str, fmt: str) -> Response:
    """The whole run as a file, answered by the API's own handler."""

    def build(caller: Caller) -> Response:
        if fmt not in ("csv", "xlsx"):
            raise NotFound("no such export")
        return reconciliation_router.show_reconciliation(caller, run_id, format=fmt)  # type: ignore[arg-type]

    return await _page(request, build)


def _sign_off_page(
    caller: Caller, run_id: str, *, note: str = "", message: str | None = None
) -> Page:
    if not _may_sign_off(caller):
        raise Forbidden(f"the {caller.principal.role} role cannot sign a reconciliation off")
    found = _run(caller, run_id)
    return Page(
        "reconciliation_sign_off.html",
        org=_organization(caller, found["organization_code"]),
        run=found,
        note=note,
        message=message,
        # One key per form shown: a second click of the same form replays the first sign-off.
        idempotency_key=f"console-sign-off-{secrets.token_urlsafe(24)}",
    )


@router.get("/console/reconciliations/{run_id}/sign-off", response_class=HTMLResponse)
async def sign_off_form(request: Request, run_id: str) -> Response:
    return await _page(request, lambda caller: _sign_off_page(caller, run_id))


@router.post("/console/reconciliations/{run_id}/sign-off")
async def sign_off(request: Request, run_id: str) -> Response:
    """签核 from the form: CSRF first, then the role and scope the API's route asks, then the
    same command; back to the run page, which then shows who signed it off and when."""
    form = await request.form()
    caller = await session.session_caller(request, _services(request))
    try:
        session.check_form(request, form.get(session.CSRF_FIELD))
    except Forbidden as exc:
        return _error(request, 403, exc.detail, caller)
    if caller is None:
        return _to_sign_in(request)
    note = form.get("note")
    key = form.get(KEY_FIELD)

    def work(caller: Caller) -> Page | None:
        if not _may_sign_off(caller):
            raise Forbidden(f"the {caller.principal.role} role cannot sign a reconciliation off")
        ledger = caller.services.ledger
        caller.require_org(organization_of(ledger, run_id))
        text = note.strip() if isinstance(note, str) else ""
        if not text or len(text) > MAX_NOTE_CHARS:
            return _sign_off_page(
                caller,
                run_id,
                note=text[:MAX_NOTE_CHARS],
                message=f"请填写签核意见（1 至 {MAX_NOTE_CHARS} 个字）。",
            )
        if not isinstance(key, str):
            raise InvalidValue(KEY_FIELD, "the form's key is missing; open the form again")
        ledger.execute(
            SignOffReconciliation(run_id=UUID(run_id), note=text, by=caller.actor, at=clock.now()),
            actor=caller.actor,
            idempotency=IdempotencyKey.parse(caller.principal.idempotency_scope, key),
        )
        return None

    try:
        again = await run_in_threadpool(work, caller)
    except ApiProblem as exc:
        return _error(request, exc.status, exc.detail, caller)
    except NotFound as exc:
        return _error(request, 404, str(exc), caller)
    except InvalidValue as exc:
        return _error(request, 422, str(exc), caller)
    except (RuleViolation, IdempotencyKeyReused) as exc:
        return _error(request, 409, str(exc), caller)
    if again is not None:
        return _render(request, again.template, again.context, status_code=422, caller=caller)
    return _security_headers(
        RedirectResponse(f"/console/reconciliations/{run_id}", status_code=303)
    )
