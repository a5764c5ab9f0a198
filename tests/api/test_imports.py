"""Roster imports (会员名册导入) through real HTTP: CSV and XLSX, row-level reports, retries."""

from __future__ import annotations

import datetime
import io
import uuid

from openpyxl import Workbook
from openpyxl.styles import Font

from scripts.synthetic import id_number
from tests.api.conftest import Api

HEADER_EN = "id_number,name,joined_on,mobile,migrant_worker,new_employment_form"
HEADER_ZH = "身份证号,姓名,入会日期,手机号,农民工,新就业形态"


def upload(
    api: Api,
    content: bytes,
    filename: str,
    *,
    org: str | None = None,
    key: str | None = None,
    token: str = "east_clerk",
):
    return api.client.post(
        "/v1/members/imports",
        headers=api.headers(token, key or uuid.uuid4().hex),
        data={"organization_code": org or api.tree.base_b},
        files={"file": (filename, content, "application/octet-stream")},
    )


def test_csv_with_bom_and_chinese_headers(api: Api) -> None:
    good = [api.next_person() for _ in range(3)]
    lines = [
        HEADER_ZH,
        f"{good[0]},刘洋,2021-01-05,13800001111,是,否",
        f"{good[1]},孙丽,2021-02-05,,否,是",
        "110105199003071230,坏号码,2021-01-05,,否,否",
        f"{good[2]},周杰,2021-02-30,,否,否",
        f"{api.next_person()},,2021-01-05,,否,否",
        f"{api.next_person()},吴昊,2021-01-05,12345,否,否",
        f"{good[2]},周杰,2021-03-01,13900002222,true,0",
    ]
    content = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")
    response = upload(api, content, "名册.csv", key="import-zh")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows_total"] == 7 and report["rows_accepted"] == 3
    assert [r["row"] for r in report["accepted"]] == [2, 3, 8]
    assert {r["row"]: r["field"] for r in report["rejected"]} == {
        4: "id_number",
        5: "joined_on",
        6: "name",
        7: "mobile",
    }
    assert all(r["reason"] for r in report["rejected"])
    assert isinstance(report["position"], int)
    member = api.get(f"/v1/members/{report['accepted'][0]['member_id']}", token="admin_pii").json()
    assert member["name"] == "刘洋" and member["migrant_worker"] is True
    # A retry of the same upload replays the report and joins nobody twice.
    ledger = api.backend.open()
    head = ledger.head_position()
    again = upload(api, content, "名册.csv", key="import-zh")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == report and ledger.head_position() == head
    other = upload(
        api,
        content + b"\r\n" + good[0].encode() + b",x,2021-01-01,,,\r\n",
        "名册.csv",
        key="import-zh",
    )
    assert other.status_code == 422
    # The same people again under a new key: each row is a 409-style rejection.
    repeated = upload(api, content, "名册.csv").json()
    assert repeated["rows_accepted"] == 0 and repeated["rows_rejected"] == 7


def test_xlsx_roster(api: Api) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER_EN.split(","))
    people = [api.next_person() for _ in range(2)]
    sheet.append([people[0], "郑爽", datetime.date(2022, 5, 1), 13712345678, True, False])
    sheet.append([people[1], "冯刚", "2022-05-02", None, "否", "是"])
    sheet.append([people[1], "冯刚", "2022-05-02", None, "maybe", "是"])
    out = io.BytesIO()
    workbook.save(out)
    response = upload(api, out.getvalue(), "roster.xlsx")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows_accepted"] == 2 and report["rejected"][0]["row"] == 4
    assert report["rejected"][0]["field"] == "migrant_worker"


def test_import_refusals(api: Api) -> None:
    assert upload(api, b"name,joined_on\r\nx,2020-01-01\r\n", "a.csv").status_code == 422
    assert upload(api, b"", "a.csv").status_code == 422
    assert upload(api, b"\xff\xfe\xfa\x00 not utf-8", "a.csv").status_code == 422
    assert upload(api, b"PK\x03\x04 not really a zip", "a.xlsx").status_code == 422
    row = f"{api.next_person()},王五,2021-01-05,,否,否\n"
    too_many = (HEADER_EN + "\n" + row * 100_001).encode()
    ledger = api.backend.open()
    head = ledger.head_position()
    response = upload(api, too_many, "big.csv")
    assert response.status_code == 422 and "100000" in response.json()["detail"]
    assert ledger.head_position() == head
    assert (
        upload(api, (HEADER_EN + "\n" + row).encode(), "a.csv", token="west_clerk").status_code
        == 403
    )
    assert (
        upload(api, (HEADER_EN + "\n" + row).encode(), "a.csv", token="east_auditor").status_code
        == 403
    )
    missing = api.client.post(
        "/v1/members/imports",
        headers=api.headers("admin", "k-missing"),
        data={"organization_code": api.tree.base_b},
    )
    assert missing.status_code == 422


def test_oversized_roster_is_refused_early(api: Api) -> None:
    limit = api.backend.settings.max_import_body_bytes
    response = upload(api, b"x" * (limit + 1), "huge.csv")
    assert response.status_code == 413


def test_a_roster_saved_as_gbk_by_excel_on_chinese_windows(api: Api) -> None:
    people = [api.next_person() for _ in range(2)]
    lines = [
        HEADER_ZH,
        f"{people[0]},欧阳娜娜,2021-01-05,13800001111,是,否",
        f"{people[1]},张伟,2021-02-05,,否,是",
    ]
    content = ("\r\n".join(lines) + "\r\n").encode("gbk")
    response = upload(api, content, "名册.csv")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rows_accepted"] == 2 and report["rejected"] == []
    member = api.get(f"/v1/members/{report['accepted'][0]['member_id']}", token="admin_pii").json()
    assert member["name"] == "欧阳娜娜" and member["migrant_worker"] is True


ROSTER_ROWS = 3_000
JOINED = datetime.date(2010, 1, 1)


def roster_people(first: int) -> list[str]:
    """3,000 people born a day apart from 1960 on (api.next_person runs into the future)."""
    return [
        id_number("110101", datetime.date(1960, 1, 1) + datetime.timedelta(n), n)
        for n in range(first, first + ROSTER_ROWS)
    ]


def expected_report(people: list[str]) -> tuple[list[int], list[dict[str, str | int]]]:
    """The rows a 3,000-row roster accepts and rejects: row n + 1 holds people[n - 1]; every
    500th has an impossible date and every 700th no name. A blank row follows row 1001."""
    accepted, rejected = [], []
    for n in range(1, len(people) + 1):
        row = n + 1 + (n > 1000)
        if n % 500 == 0:
            rejected.append({"row": row, "field": "joined_on"})
        elif n % 700 == 0:
            rejected.append({"row": row, "field": "name"})
        else:
            accepted.append(row)
    return accepted, rejected


def roster_values(people: list[str]) -> list[list[object]]:
    rows: list[list[object]] = []
    for n, someone in enumerate(people, start=1):
        joined = "2021-02-30" if n % 500 == 0 else JOINED + datetime.timedelta(n)
        rows.append(
            [
                someone,
                "" if n % 700 == 0 else f"会员{n}",
                joined,
                13800000000 + n,
                "是" if n % 2 else "否",
                "否",
            ]
        )
        if n == 1000:
            rows.append([None] * 6)
    return rows


def check_roster_report(api: Api, response, people: list[str]) -> None:
    assert response.status_code == 200, response.text
    report = response.json()
    accepted, rejected = expected_report(people)
    assert report["rows_total"] == len(people)
    assert [r["row"] for r in report["accepted"]] == accepted
    assert [{"row": r["row"], "field": r["field"]} for r in report["rejected"]] == rejected
    assert report["rows_accepted"] == len(accepted) and report["rows_rejected"] == len(rejected)
    member = api.get(f"/v1/members/{report['accepted'][-1]['member_id']}").json()
    last = len(people) - 1  # the last row is refused (3,000 is a multiple of 500)
    assert member["joined_on"] == (JOINED + datetime.timedelta(last)).isoformat()
    assert member["migrant_worker"] is (last % 2 == 1)


def test_a_normal_csv_roster_with_blank_lines_at_the_end_imports_as_before(api: Api) -> None:
    people = roster_people(0)
    lines = [HEADER_ZH] + [
        ",".join("" if v is None else str(v) for v in row) for row in roster_values(people)
    ]
    content = ("\ufeff" + "\r\n".join(lines) + "\r\n" + "\r\n" * 3 + ",,,,,\r\n").encode()
    check_roster_report(api, upload(api, content, "名册.csv"), people)


def test_a_normal_xlsx_roster_with_blank_rows_at_the_end_imports_as_before(api: Api) -> None:
    people = roster_people(ROSTER_ROWS)
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER_ZH.split(","))
    for row in roster_values(people):
        sheet.append(row)
    for number in range(sheet.max_row + 1, sheet.max_row + 6):
        sheet.cell(number, 1).font = Font(bold=True)  # formatted, empty: a blank row
    out = io.BytesIO()
    book.save(out)
    check_roster_report(api, upload(api, out.getvalue(), "名册.xlsx"), people)


def test_a_file_past_a_limit_is_a_413_problem(api: Api) -> None:
    content = (HEADER_EN + "\r\n" + "x" * 70_000 + "\r\n").encode()
    response = upload(api, content, "long.csv")
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "field": "file",
            "message": "the CSV record at line 2 is longer than 65536 characters, the limit",
        }
    ]
