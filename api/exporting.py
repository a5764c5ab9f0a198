"""Answers in json, csv (UTF-8 with a BOM) or xlsx, with Chinese headers for auditors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse, Response

from projections.reports.exports import Column, to_csv, to_xlsx

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLE_FORMATS = {
    "text/csv": {"schema": {"type": "string"}},
    XLSX: {"schema": {"type": "string", "format": "binary"}},
}


def tabular(
    fmt: str,
    body: dict[str, Any],
    *,
    rows: list[dict[str, Any]],
    filename: str,
    title: str,
    subtitle: str,
    columns: Sequence[Column],
) -> Response:
    if fmt == "json":
        return JSONResponse(body)
    disposition = {"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'}
    if fmt == "csv":
        return Response(
            to_csv(title, columns, rows, subtitle=subtitle),
            media_type="text/csv; charset=utf-8",
            headers=disposition,
        )
    return Response(
        to_xlsx(title, columns, rows, subtitle=subtitle), media_type=XLSX, headers=disposition
    )
