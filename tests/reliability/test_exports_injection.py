"""CSV/XLSX injection: text a client wrote that starts with =, +, -, @, tab or CR is exported
as inert text, while amounts (negative ones too) stay numbers. Read back with csv/openpyxl."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import load_workbook

from projections.reports.documents import (
    FORMULA_STARTS,
    Column,
    Document,
    csv_chunks,
    neutralise,
    write_xlsx,
)
from tests.api.conftest import Api

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "=cmd|' /C calc'!A0",
]


def dangerous(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not (value.lstrip("-").replace(".", "", 1).isdigit())
    )


def test_neutralise_keeps_numbers_and_plain_text() -> None:
    assert neutralise("-12.50") == "-12.50" and neutralise("42") == "42"
    assert neutralise("王芳") == "王芳" and neutralise(None) is None and neutralise(-3) == -3
    for text in HOSTILE:
        assert neutralise(text) == "'" + text


def _document(rows: list[dict]) -> Document:
    columns = [
        Column("description", "摘要"),
        Column("amount", "金额", "amount"),
        Column("name", "姓名"),
    ]
    return Document(sheet="t", title="t", header=[], columns=columns, rows=rows)


def test_files_read_back_hold_no_formula(tmp_path) -> None:
    rows = [{"description": text, "amount": "-12.50", "name": text} for text in HOSTILE]
    data = b"".join(csv_chunks(_document(rows)))
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    lines = list(reader)[2:]
    assert len(lines) == len(HOSTILE)
    for line, text in zip(lines, HOSTILE, strict=True):
        assert line == ["'" + text, "-12.50", "'" + text]
    write_xlsx(_document(rows), tmp_path / "t.xlsx")
    sheet = load_workbook(tmp_path / "t.xlsx").active
    body = list(sheet.iter_rows(min_row=3, values_only=True))
    for cells in body:
        assert cells[1] == Decimal("-12.50") or cells[1] == -12.5  # a number, not text
        assert not any(dangerous(c) for c in cells)
    for row in sheet.iter_rows(min_row=3):
        assert all(cell.data_type != "f" for cell in row)  # no cell is a formula


def test_exports_through_the_api(api: Api) -> None:
    code = api.tree.base_w
    hostile_name = '=HYPERLINK("http://evil","点我")'
    joined = api.post(
        "/v1/members",
        {
            "id_number": api.next_person(),
            "name": hostile_name,
            "organization_code": code,
            "joined_on": "2020-05-01",
        },
    )
    assert joined.status_code == 201, joined.text
    assert (
        api.post(
            "/v1/funds/dues",
            {
                "organization_code": code,
                "period": "2024-01",
                "amount": "50.00",
                "received_on": "2024-01-20",
            },
        ).status_code
        == 201
    )
    for text in HOSTILE[:4]:
        paid = api.post(
            "/v1/funds/expenses",
            {
                "organization_code": code,
                "account_code": "501",
                "amount": "10.00",
                "earmarked": False,
                "description": text,
                "paid_on": "2024-02-10",
            },
        )
        assert paid.status_code == 201, paid.text

    roll = api.get(f"/v1/organizations/{code}/roll", params={"format": "csv"}, token="admin_pii")
    assert roll.status_code == 200
    cells = [c for line in csv.reader(io.StringIO(roll.content.decode("utf-8-sig"))) for c in line]
    assert "'" + hostile_name in cells and not any(dangerous(c) for c in cells)

    journal = api.get(
        f"/v1/organizations/{code}/journal",
        params={"format": "xlsx", "from": "2024-02-01", "to": "2024-02-28"},
    )
    assert journal.status_code == 200
    sheet = load_workbook(io.BytesIO(journal.content)).active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row]
    assert {"'" + t for t in HOSTILE[:4]} <= set(values)
    assert not any(dangerous(v) for v in values)
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)

    # February alone: expenditure without income, so the surplus is negative; as filed
    # (工会02表 with its totals rows) it must read back as a number, not as text.
    statement = api.get(
        f"/v1/organizations/{code}/statements/income-expenditure",
        params={"from": "2024-02-01", "to": "2024-02-28", "format": "xlsx"},
    )
    assert statement.status_code == 200
    sheet = load_workbook(io.BytesIO(statement.content)).active
    surplus = [row for row in sheet.iter_rows(values_only=True) if "收支结余" in row]
    assert len(surplus) == 1
    amount = surplus[0][-1]
    assert not isinstance(amount, str) and Decimal(str(amount)) == Decimal("-40")
