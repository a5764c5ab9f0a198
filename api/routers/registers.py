"""The registers behind the subsidies: hardship files (困难职工档案), model workers (劳模名册),
and the assistance report (困难职工帮扶和劳模工作统计).

Scope: a hardship file is the business of the person's current union and the unions above it
(a file outside the scope is answered as an unknown one, 404, as a member is); a model worker
that of the union keeping the record. Personal data is masked for tokens without the pii flag
(causes of health, income, names, identity numbers) and every unmasked answer is recorded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.exporting import TABLE_FORMATS, document_answer
from api.models.common import ERRORS
from api.models.registers import (
    AssistanceReport,
    CloseHardshipFile,
    HardshipFile,
    HardshipFiles,
    HardshipFileWritten,
    ModelWorkers,
    ModelWorkerWritten,
    OpenHardshipFile,
    RegisterModelWorker,
    ReviewHardshipFile,
    RevokeModelWorker,
)
from api.presenting import command, present
from api.queries import (
    DayParam,
    FormatParam,
    PageParam,
    PageSizeParam,
    ScopeParam,
    day_or_today,
    period,
)
from api.security import Caller, Idempotency, Reader, Writer
from domain.errors import InvalidValue, NotFound
from projections.reports.registers import (
    assistance_document,
    hardship_files_document,
    model_workers_document,
)
from service import commands
from service.commands.registers import read_hardship_file, read_model_worker
from storage.clock import today_in_china

router = APIRouter(tags=["registers"], responses=ERRORS)
FileStatusParam = Annotated[Literal["open", "closed"] | None, Query()]
LevelParam = Annotated[Literal["national", "provincial", "city", "county"] | None, Query()]


def _file_in_scope(caller: Caller, file_id: str) -> dict[str, Any]:
    """The file, if the person's union is within the scope (else 404, as for no such file)."""
    found = read_hardship_file(caller.services.ledger.unit_of_work(), file_id)
    if not caller.sees_member(found):
        raise NotFound(f"hardship file {str(file_id)[:40]} not found")
    return found


def _worker_in_scope(caller: Caller, worker_id: str) -> dict[str, Any]:
    found = read_model_worker(caller.services.ledger.unit_of_work(), worker_id)
    if not caller.sees_member(found):
        raise NotFound(f"model worker {str(worker_id)[:40]} not found")
    return found


@router.post("/v1/hardship-files", status_code=201, response_model=HardshipFileWritten)
async def open_hardship_file(
    caller: Writer, idempotency: Idempotency, body: OpenHardshipFile
) -> JSONResponse:
    """建档 by the member's own union. 409 if the person has an open file, or if another
    union (organization_code) tries to open it; 422 for a member_id that names no member the
    token may see."""
    try:
        await run_in_threadpool(caller.require_member, body.member_id)
    except NotFound:
        # A member named in a body: 422, for an unknown one and one outside the scope alike.
        raise InvalidValue("member_id", f"no member has id {body.member_id[:40]!r}") from None
    if body.organization_code is not None:
        await caller.in_scope(body.organization_code, field="organization_code")
    return await command(
        caller,
        commands.OpenHardshipFile(**body.model_dump()),
        idempotency,
        "POST /v1/hardship-files",
        201,
    )


@router.get("/v1/hardship-files/{file_id}", response_model=HardshipFile)
def get_hardship_file(caller: Reader, file_id: str) -> dict:
    return present(caller, _file_in_scope(caller, file_id), "GET /v1/hardship-files/{file_id}")


@router.post(
    "/v1/hardship-files/{file_id}/reviews", status_code=201, response_model=HardshipFileWritten
)
async def review_hardship_file(
    caller: Writer, idempotency: Idempotency, file_id: str, body: ReviewHardshipFile
) -> JSONResponse:
    """年度复核."""
    await run_in_threadpool(_file_in_scope, caller, file_id)
    return await command(
        caller,
        commands.ReviewHardshipFile(file_id=file_id, **body.model_dump()),
        idempotency,
        "POST /v1/hardship-files/{file_id}/reviews",
        201,
    )


@router.post("/v1/hardship-files/{file_id}/closure", response_model=HardshipFileWritten)
async def close_hardship_file(
    caller: Writer, idempotency: Idempotency, file_id: str, body: CloseHardshipFile
) -> JSONResponse:
    """脱困: status closed; later hardship payouts to the person are refused (409)."""
    await run_in_threadpool(_file_in_scope, caller, file_id)
    return await command(
        caller,
        commands.CloseHardshipFile(file_id=file_id, **body.model_dump()),
        idempotency,
        "POST /v1/hardship-files/{file_id}/closure",
        200,
    )


@router.get(
    "/v1/organizations/{code}/hardship-files",
    response_model=HardshipFiles,
    responses={200: {"content": TABLE_FORMATS}},
)
def hardship_files(
    caller: Reader,
    code: str,
    as_of: DayParam = None,
    scope: ScopeParam = "self",
    status: FileStatusParam = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
    format: FormatParam = "json",
) -> Response:
    """Files on record on `as_of` with their figures then; `overdue` when the yearly review
    is past due."""
    caller.require_org(code)
    day = day_or_today(as_of, "as_of")
    found = caller.services.caught_up().hardship_files(
        code,
        as_of=day,
        scope=scope,
        status=status,
        page=page,
        page_size=page_size,
        everything=format != "json",
    )
    return document_answer(
        caller,
        format,
        found,
        "GET /v1/organizations/{code}/hardship-files",
        hardship_files_document,
        code=code,
        when=("截至", str(day)),
        filename=f"hardship-files-{code}-{day}",
        scope=scope,
        position=caller.services.read_models.position(),
    )


@router.post("/v1/model-workers", status_code=201, response_model=ModelWorkerWritten)
async def register_model_worker(
    caller: Writer, idempotency: Idempotency, body: RegisterModelWorker
) -> JSONResponse:
    """劳模登记 by identity number (the roll's keyed member id); a person already on the
    register gets the honour added."""
    await caller.in_scope(body.organization_code, field="organization_code")
    return await command(
        caller,
        commands.RegisterModelWorker(**body.model_dump()),
        idempotency,
        "POST /v1/model-workers",
        201,
    )


@router.post("/v1/model-workers/{model_worker_id}/revocation", response_model=ModelWorkerWritten)
async def revoke_model_worker(
    caller: Writer, idempotency: Idempotency, model_worker_id: str, body: RevokeModelWorker
) -> JSONResponse:
    """撤销: model-worker payouts dated on or after revoked_on are refused (409)."""
    await run_in_threadpool(_worker_in_scope, caller, model_worker_id)
    return await command(
        caller,
        commands.RevokeModelWorker(model_worker_id=model_worker_id, **body.model_dump()),
        idempotency,
        "POST /v1/model-workers/{model_worker_id}/revocation",
        200,
    )


@router.get(
    "/v1/organizations/{code}/model-workers",
    response_model=ModelWorkers,
    responses={200: {"content": TABLE_FORMATS}},
)
def model_workers(
    caller: Reader,
    code: str,
    scope: ScopeParam = "self",
    level: LevelParam = None,
    page: PageParam = 1,
    page_size: PageSizeParam = 100,
    format: FormatParam = "json",
) -> Response:
    caller.require_org(code)
    today = today_in_china()
    found = caller.services.caught_up().model_workers(
        code,
        today=today,
        scope=scope,
        level=level,
        page=page,
        page_size=page_size,
        everything=format != "json",
    )
    return document_answer(
        caller,
        format,
        found,
        "GET /v1/organizations/{code}/model-workers",
        model_workers_document,
        code=code,
        when=("截至", str(today)),
        filename=f"model-workers-{code}-{today}",
        scope=scope,
        position=caller.services.read_models.position(),
    )


@router.get(
    "/v1/organizations/{code}/reports/assistance",
    response_model=AssistanceReport,
    responses={200: {"content": TABLE_FORMATS}},
)
def assistance_report(
    caller: Reader,
    code: str,
    from_: Annotated[
        str | None, Query(alias="from", max_length=10, examples=["2025-01-01"])
    ] = None,
    to: Annotated[str | None, Query(max_length=10, examples=["2025-12-31"])] = None,
    scope: ScopeParam = "self",
    format: FormatParam = "json",
) -> Response:
    """Households on file by category and cause on `to`; files opened, reviewed and closed in
    the period; money paid per programme and per household; model workers by level and the
    allowances paid; files overdue for their yearly review; and the payouts against the
    ledger's 50404/50503 and 504/505 for the same scope and period."""
    caller.require_org(code)
    start, end = period(from_, to)
    found = caller.services.caught_up().assistance(code, date_from=start, date_to=end, scope=scope)
    return document_answer(
        caller,
        format,
        found,
        "GET /v1/organizations/{code}/reports/assistance",
        assistance_document,
        code=code,
        when=("期间", f"{start} 至 {end}"),
        filename=f"assistance-{code}-{start}-{end}",
        scope=scope,
        position=caller.services.read_models.position(),
        money=True,
    )
