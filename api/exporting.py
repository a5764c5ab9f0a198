"""Exports: the whole result of a roll, a journal or a statement as a filed CSV or XLSX.

An export is never one page: paging parameters do not apply to it. Its rows are read from the
read models a chunk at a time in one snapshot, masked chunk by chunk for a token without the
pii flag, and written to a temporary file as they come (CSV, or XLSX through the streaming
writer of projections/reports/documents.py), which the response then streams and deletes:
however big the roll, the process holds one chunk of rows in memory.

The header block names what the document reflects: the union, the date or period, the moment
it is known at, the scope, the last event position it counts, the newest seal, and when it was
made.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from api.json_answer import JsonAnswer
from api.presenting import present
from api.security import Caller
from domain.access import MAX_READ_MEMBER_IDS
from domain.privacy import mask
from projections.reports.documents import Document, csv_chunks, write_xlsx
from service.commands import RecordPiiRead
from storage.clock import CHINA

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLE_FORMATS = {
    "text/csv": {"schema": {"type": "string"}},
    XLSX: {"schema": {"type": "string", "format": "binary"}},
}
SCOPE_NAMES = {"self": "本级", "subtree": "本级及下级汇总"}


def header_block(
    caller: Caller,
    code: str,
    when: tuple[str, str],
    *,
    scope: str,
    known_at: str | None,
    position: int,
    consolidated: bool = False,
    money: bool = False,
) -> list[dict[str, str]]:
    """The lines above a document's table, each a label and its value."""
    name = caller.services.read_models.organization(code)["name"]
    seal = caller.services.audit.latest_seal()
    scope_name = SCOPE_NAMES.get(scope, scope)
    if consolidated:
        scope_name = "本级及下级合并（已抵销内部往来）"
    lines: list[tuple[str, str]] = [
        ("编制单位", f"{name}（{code}）"),
        when,
        ("数据截至时点", known_at or "制表时的全部记录"),
        ("范围", scope_name),
        ("事件位置", str(position)),
        (
            "最新封印",
            "尚无封印"
            if seal is None
            else f"位置 {seal['position']}，哈希 {seal['chain_hash']}，{seal['sealed_at']}",
        ),
        ("制表时间", datetime.datetime.now(CHINA).isoformat(timespec="seconds")),
    ]
    if money:
        lines.append(("金额单位", "元"))
    # As data that masking knows: a union's name is free text (an identity or mobile number
    # typed into it is masked like any other).
    return [{"label": label, "subtitle": value} for label, value in lines]


def _as_lines(header: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(line["label"], line["subtitle"]) for line in header]


def shown(
    caller: Caller,
    header: list[dict[str, str]],
    chunks: Iterable[list[dict[str, Any]]],
    *,
    route: str,
    query: str,
    fmt: str,
) -> tuple[list[tuple[str, str]], Iterator[dict[str, Any]]]:
    """The header and the rows as the caller may see them: masked (the rows chunk by chunk),
    or for a token with the pii flag as they are, the reading then recorded once, when the
    last row has been written, if anything in it would have been masked. A recording names
    at most MAX_READ_MEMBER_IDS members, and the query, which names the rest: a roll as known
    at a moment is exactly reproducible."""
    if not caller.pii:
        return _as_lines(mask(header)), (row for chunk in chunks for row in mask(chunk))

    def rows() -> Iterator[dict[str, Any]]:
        ids: set[str] = set()
        count = 0
        revealing = mask(header) != header
        for chunk in chunks:
            revealing = revealing or mask(chunk) != chunk
            for row in chunk:
                count += 1
                member_id = row.get("member_id")
                if isinstance(member_id, str) and len(ids) < MAX_READ_MEMBER_IDS:
                    ids.add(member_id)
                yield row
        if revealing:
            caller.services.ledger.execute(
                RecordPiiRead(
                    purpose=f"{route} {query} rows={count} format={fmt}", member_ids=sorted(ids)
                ),
                actor=caller.actor,
            )

    return _as_lines(header), rows()


def export(fmt: str, document: Document, filename: str) -> Response:
    """Writes the document to a temporary file and answers with it (deleted once sent)."""
    handle, name = tempfile.mkstemp(prefix="ledger-export-", suffix=f".{fmt}")
    path = Path(name)
    try:
        if fmt == "csv":
            with os.fdopen(handle, "wb") as out:
                for chunk in csv_chunks(document):
                    out.write(chunk)
            media_type = "text/csv; charset=utf-8"
        else:
            os.close(handle)
            write_xlsx(document, path)
            media_type = XLSX
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"{filename}.{fmt}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


def statement_answer(
    caller: Caller,
    fmt: str,
    found: dict[str, Any],
    purpose: str,
    document: Any,
    *,
    code: str,
    when: tuple[str, str],
    filename: str,
) -> Response:
    """A statement in JSON, or as its filed document: the same answer either way."""
    return document_answer(
        caller,
        fmt,
        found,
        purpose,
        document,
        code=code,
        when=when,
        filename=filename,
        scope=found["scope"],
        position=found["position"],
        money=True,
    )


def document_answer(
    caller: Caller,
    fmt: str,
    found: dict[str, Any],
    purpose: str,
    document: Any,
    *,
    code: str,
    when: tuple[str, str],
    filename: str,
    scope: str,
    position: int,
    money: bool = False,
) -> Response:
    """An answer held whole in memory (a statement, a register's report) in JSON, or as the
    filed document `document(header lines, answer)` makes of it: masked, or read unmasked and
    recorded once, header and all."""
    if fmt == "json":
        return JsonAnswer(present(caller, found, f"{purpose} format={fmt}"))
    header = header_block(
        caller,
        code,
        when,
        scope=scope,
        known_at=found.get("known_at"),
        position=position,
        consolidated=bool(found.get("consolidated")),
        money=money,
    )
    seen = present(caller, {"answer": found, "header": header}, f"{purpose} format={fmt}")
    return export(fmt, document(_as_lines(seen["header"]), seen["answer"]), filename)
