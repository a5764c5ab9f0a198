"""会员名册导入: a roster file of up to 100,000 rows; valid rows are stored, the others reported.
The file is read within the limits of api/tabular: past one, it is refused whole (413 or 422)
and nothing is stored.

Rows join through service.imports.join_rows, a thousand per command, each chunk with its own
idempotency key derived from the request's key and its row numbers, so a retried import joins
nobody twice. The whole report is
kept under the request's key, so a retry with the same file replays it and another file under
the same key is a 422, as for every POST.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse

from api.idempotent import run_once
from api.json_answer import JsonAnswer
from api.models.common import ERRORS, CreditCodeText
from api.models.members import ImportReport
from api.presenting import present
from api.roster import import_roster
from api.security import Caller, Idempotency, Writer
from service.idempotency import IdempotencyKey
from storage import gc_pause

router = APIRouter(prefix="/v1/members", tags=["members"], responses=ERRORS)
COMMAND = "import_members"
CHUNK_BYTES = 1024 * 1024


def _sha256(upload: UploadFile) -> str:
    digest = hashlib.sha256()
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK_BYTES):
        digest.update(chunk)
    upload.file.seek(0)
    return digest.hexdigest()


def _join_rows(caller: Caller, key: IdempotencyKey, code: str, upload: UploadFile) -> dict:
    return import_roster(
        caller.services.ledger, code, upload.file, actor=caller.actor, idempotency=key
    )


@router.post(
    "/imports",
    response_model=ImportReport,
    responses={
        413: {
            **ERRORS[413],
            "description": "Request body too large, or a file that would expand past a "
            "limit once read (the problem names which)",
        }
    },
)
def import_members(
    caller: Writer,
    idempotency: Idempotency,
    organization_code: Annotated[CreditCodeText, Form()],
    file: Annotated[
        UploadFile,
        File(
            description="CSV (UTF-8 or GB18030/GBK) or XLSX "
            "roster: id_number, "
            "name, joined_on, mobile, migrant_worker, "
            "new_employment_form (or 身份证号, 姓名, 入会日期, 手机号, "
            "农民工, 新就业形态)"
        ),
    ],
) -> JSONResponse:
    """Bulk 入会 from a roster. Rows are numbered as in a spreadsheet (the header is row 1)."""
    caller.require_org(organization_code, field="organization_code")
    request = {"organization_code": organization_code, "file_sha256": _sha256(file)}
    # The report too (recorded, masked, written: 100,000 rows each time) is built with automatic
    # collection off, as the import is (storage/gc_pause.py).
    with gc_pause.paused():
        report, replayed = run_once(
            caller,
            idempotency,
            COMMAND,
            request,
            lambda: _join_rows(caller, idempotency, organization_code, file),
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return JsonAnswer(present(caller, report, "POST /v1/members/imports"), headers=headers)
