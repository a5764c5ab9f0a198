"""月末对账 over HTTP: run a month's reconciliation of one union with the files the bank and the
tax bureau handed out, list and show the runs (CSV/XLSX exports are whole), and sign a run off.

A run is stored as events (domain/reconciliation_runs.py) and its figures never change: a new
run is a new record. Clerks and admins run one within their scope (auditors only read, as
everywhere); auditors and admins sign a run off, and a signed-off run is closed (409 on a
second sign-off).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict

from api.exporting import TABLE_FORMATS, XLSX
from api.idempotent import run_once
from api.json_answer import JsonAnswer
from api.models.common import ERRORS, CreditCodeText, MonthText, RequestModel, text
from api.presenting import present
from api.queries import DayParam, FormatParam, PageParam, PageSizeParam, day_or_today
from api.reconciliations import Upload, read_files, run_reconciliation
from api.security import Auditor, Caller, Idempotency, Reader, Writer
from domain.organizations import Deployment
from domain.reconciliation import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS
from domain.reconciliation_runs import MAX_NOTE_CHARS
from projections.reconciliation.monitors import alerts
from projections.reconciliation.report import csv_bytes, workbook_bytes
from service.commands import SignOffReconciliation
from service.reconciliations import list_runs, organization_of, run_view
from storage import clock

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliation"], responses=ERRORS)
alerts_router = APIRouter(
    prefix="/v1/organizations/{code}", tags=["reconciliation"], responses=ERRORS
)
COMMAND = "run_reconciliation"
CHUNK_BYTES = 1024 * 1024
FILE_HELP = (
    "CSV (UTF-8 or GB18030/GBK, detected) or XLSX, as exported; title rows above the heading "
    "row are skipped"
)


class SignOff(RequestModel):
    """签核"""

    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "已核对，手续费下月入账"}]})

    note: text(MAX_NOTE_CHARS, min_length=1, description="签核意见")  # type: ignore[valid-type]


def _sha256(upload: UploadFile | None) -> str | None:
    if upload is None:
        return None
    digest = hashlib.sha256()
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK_BYTES):
        digest.update(chunk)
    upload.file.seek(0)
    return digest.hexdigest()


def _upload(upload: UploadFile | None) -> Upload | None:
    return None if upload is None else Upload(upload.file, upload.filename or "")


@router.post("", status_code=201, responses={413: ERRORS[413]})
def create_run(
    caller: Writer,
    idempotency: Idempotency,
    organization_code: Annotated[CreditCodeText, Form()],
    period: Annotated[MonthText, Form()],
    levy_file: Annotated[UploadFile | None, File(description="税务代收明细: " + FILE_HELP)] = None,
    bank_file: Annotated[UploadFile | None, File(description="银行对账单: " + FILE_HELP)] = None,
    window_days: Annotated[
        int,
        Form(ge=0, le=MAX_WINDOW_DAYS, description="match the same amount this many days apart"),
    ] = DEFAULT_WINDOW_DAYS,
) -> JSONResponse:
    """Runs the month's reconciliation of the union and stores it: the union's books against
    the read models, and per file the rows read, matched (and by which rule) and every
    difference with its row number, the ledger's side and the file's side."""
    caller.require_org(organization_code, field="organization_code")
    request = {
        "organization_code": organization_code,
        "period": period,
        "window_days": window_days,
        "levy_file_sha256": _sha256(levy_file),
        "bank_file_sha256": _sha256(bank_file),
    }

    def work() -> dict[str, Any]:
        files = read_files(_upload(levy_file), _upload(bank_file))
        run, position = run_reconciliation(
            caller.services.ledger,
            caller.services.read_models,
            organization=organization_code,
            period=period,
            files=files,
            window_days=window_days,
            actor=caller.actor,
        )
        return {**run, "position": position}

    answer, replayed = run_once(caller, idempotency, COMMAND, request, work)
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JsonAnswer(
        present(caller, answer, "POST /v1/reconciliations"), status_code=201, headers=headers
    )


def _default_organization(caller: Caller) -> str:
    code = caller.principal.organization_code
    if code is not None:
        return code
    deployment = caller.services.ledger.unit_of_work().get(Deployment.ID)
    return str(deployment.root_code) if deployment is not None else ""


@router.get("")
def list_reconciliations(
    caller: Reader,
    organization_code: Annotated[str | None, Query(max_length=18)] = None,
    period: Annotated[str | None, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
) -> JSONResponse:
    """A union's runs, newest first (default: the token's organisation, or the root)."""
    code = organization_code or _default_organization(caller)
    caller.require_org(code)
    items, total = list_runs(
        caller.services.ledger, code, period, offset=(page - 1) * page_size, limit=page_size
    )
    body = {"items": items, "page": page, "page_size": page_size, "total": total}
    return JsonAnswer(present(caller, body, "GET /v1/reconciliations"))


def _visible(caller: Caller, run_id: str) -> None:
    caller.require_org(organization_of(caller.services.ledger, run_id))


@router.get("/{run_id}", responses={200: {"content": TABLE_FORMATS}})
def show_reconciliation(caller: Reader, run_id: str, format: FormatParam = "json") -> Response:
    """The run with every match and difference; format=csv|xlsx exports it whole."""
    _visible(caller, run_id)
    run = present(
        caller,
        run_view(caller.services.ledger, run_id),
        f"GET /v1/reconciliations/{{run_id}} format={format}",
    )
    if format == "json":
        return JsonAnswer(run)
    name = f"reconciliation-{run['organization_code']}-{run['period']}-{run['run_id'][:8]}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{format}"'}
    if format == "csv":
        return Response(csv_bytes(run), media_type="text/csv; charset=utf-8", headers=disposition)
    return Response(workbook_bytes(run), media_type=XLSX, headers=disposition)


@router.post("/{run_id}/sign-off")
def sign_off(caller: Auditor, idempotency: Idempotency, run_id: str, body: SignOff) -> JSONResponse:
    """签核: closes the run with a note, naming who and when; a signed-off run cannot change."""
    _visible(caller, run_id)
    ledger = caller.services.ledger
    result = ledger.execute(
        SignOffReconciliation(run_id=UUID(run_id), note=body.note, by=caller.actor, at=clock.now()),
        actor=caller.actor,
        idempotency=idempotency,
    )
    run = {**run_view(ledger, run_id), "position": result.position}
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return JsonAnswer(
        present(caller, run, "POST /v1/reconciliations/{run_id}/sign-off"), headers=headers
    )


@alerts_router.get("/alerts")
def organization_alerts(caller: Reader, code: str, as_of: DayParam = None) -> JSONResponse:
    """监测 over the union and every union below it: levy payables (211/212) not remitted by
    the end of the quarter after they arose, base unions with no dues for three months. (A
    run's section adds the ones its files answer: employers in the tax file without a levy,
    the bank balance against the statement's closing 余额.)"""
    caller.require_org(code)
    day = day_or_today(as_of, "as_of")
    read_models = caller.services.caught_up()
    found = alerts(read_models, code, day)
    body = {
        "organization_code": code,
        "as_of": day.isoformat(),
        "items": found,
        "total": len(found),
    }
    return JsonAnswer(present(caller, body, "GET /v1/organizations/{code}/alerts"))
