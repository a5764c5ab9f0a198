"""The privacy walk: over a store holding known people, every GET endpoint of the app in every
format, the audit stream, every write answer and its replay, and error details, read with a
token without the pii flag, must never show a person's identity number, its birth date, a
name or a mobile number; read with a pii token, they are there, and each such reading is
recorded.

The GET endpoints are taken from the application's own OpenAPI document and its routes, so
a new endpoint is walked without touching this file; one whose parameters the walk cannot
fill fails the test until a value is given below (PATH_VALUES, QUERY_VALUES).
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from domain.privacy import mask_id_number, mask_mobile, mask_name
from scripts.synthetic import id_number
from tests.api.conftest import EAST_REGION, WEST_REGION, Api
from tests.api.events import events_after
from tests.api.test_imports import HEADER_EN, upload

TODAY = datetime.date.today().isoformat()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MASKED_TOKEN, PII_TOKEN = "admin", "admin_pii"  # both deployment-wide: they see everything
FILE_IDS: list[str] = []  # hardship files the walk opens (GET /v1/hardship-files/{file_id})


@dataclass
class Person:
    """A known person: names (as joined, as corrected) chosen so that no union or account
    name contains them, and birth dates no other date of the store shares."""

    names: list[str]
    birth: datetime.date
    sequence: int
    region: str = EAST_REGION
    mobiles: list[str] = field(default_factory=list)
    stored: bool = True  # False: only ever sent in a refused import row
    member_id: str = ""

    @property
    def number(self) -> str:
        return id_number(self.region, self.birth, self.sequence)

    def secrets(self) -> list[str]:
        """Every form in which this person's data must not be shown masked."""
        number, digits = self.number, self.birth.strftime("%Y%m%d")
        forms = [
            number,
            number.lower(),
            digits,
            self.birth.isoformat(),
            f"{number[:6]} {digits} {number[14:]}",
            f"{number[:6]}-{digits}-{number[14:]}",
        ]
        forms += self.names
        for mobile in self.mobiles:
            forms += [
                mobile,
                f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}",
                f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
            ]
        return forms


P1 = Person(["蒯舫"], datetime.date(1983, 7, 19), 11, mobiles=["13726481937"])
P2 = Person(["欧阳翀翊"], datetime.date(1976, 11, 28), 22, mobiles=["15938472615"])
P3 = Person(["龚鑫淼"], datetime.date(1991, 2, 14), 33)
P4 = Person(["闫骁骞"], datetime.date(1968, 9, 3), 44, mobiles=["18611204736"])
P5 = Person(
    ["祁琰", "祁琰珺"], datetime.date(1988, 12, 6), 55, mobiles=["17790315528", "19912873360"]
)
P6 = Person(["虞婧姝"], datetime.date(1979, 4, 25), 66, region=WEST_REGION, mobiles=["13566820913"])
P7 = Person(["笪翯"], datetime.date(1985, 10, 11), 77)
# Sent in refused import rows only: a wrong check character, a bad mobile number.
P8 = Person(["隗骅"], datetime.date(1972, 8, 16), 88, stored=False)
P9 = Person(["郜珂"], datetime.date(1993, 1, 30), 99, stored=False)
PEOPLE = [P1, P2, P3, P4, P5, P6, P7, P8, P9]
RUN_IDS: list[str] = []  # the reconciliation run of the walk's store


def spaced(number: str) -> str:
    return f"{number[:6]} {number[6:14]} {number[14:]}"


# --- reading any answer as text --------------------------------------------------------------


def as_text(response: httpx.Response) -> tuple[str, int]:
    """(everything the answer shows, as text; the number of items in it: JSON list items,
    CSV rows, XLSX cells, else 1)."""
    kind = response.headers.get("content-type", "")
    if kind.startswith(XLSX):
        book = load_workbook(io.BytesIO(response.content))
        cells = [
            str(cell.value)
            for sheet in book.worksheets
            for row in sheet.iter_rows()
            for cell in row
            if cell.value is not None
        ]
        cells += [sheet.title for sheet in book.worksheets]
        return "\n".join(cells), len(cells)
    if kind.startswith("text/csv"):
        text = response.content.decode("utf-8-sig")
        return text, len(list(csv.reader(io.StringIO(text))))
    if "json" in kind:
        body = response.json()
        items = body.get("items") if isinstance(body, dict) else None
        # Dumped again without escapes: a name must not hide behind \\u escapes.
        return (json.dumps(body, ensure_ascii=False), len(items) if isinstance(items, list) else 1)
    return response.text, 1


def leaks(text: str) -> list[str]:
    return [secret for person in PEOPLE for secret in person.secrets() if secret in text]


# --- building the store through the API, with tokens without the pii flag --------------------


@dataclass
class Walk:
    api: Api
    writes: list[tuple[str, httpx.Response]] = field(default_factory=list)
    errors: list[tuple[str, httpx.Response]] = field(default_factory=list)
    outputs: int = 0
    items: int = 0
    run_id: str = ""

    def post(
        self,
        label: str,
        path: str,
        body: Any = None,
        *,
        token: str = "east_clerk",
        status: int = 201,
    ) -> dict[str, Any]:
        """A write, then the same request again: both answers are outputs to check."""
        key = uuid.uuid4().hex
        first = self.api.post(path, body, token=token, key=key)
        assert first.status_code == status, (label, first.text)
        again = self.api.post(path, body, token=token, key=key)
        assert again.status_code == status and again.headers.get("Idempotent-Replayed") == "true", (
            label,
            again.text,
        )
        self.writes += [(label, first), (f"{label} (replay)", again)]
        return first.json()

    def refused(self, label: str, response: httpx.Response, status: int) -> None:
        assert response.status_code == status, (label, response.status_code, response.text)
        self.errors.append((label, response))


def roster() -> bytes:
    wrong_check = P8.number[:-1] + ("0" if P8.number[-1] != "0" else "1")
    rows = [
        HEADER_EN,
        f"{P6.number},{P6.names[0]},2021-06-01,{P6.mobiles[0]},否,否",
        f"{P7.number},{P7.names[0]},2021-06-01,,是,否",
        f"{wrong_check},{P8.names[0]},2021-06-01,,否,否",
        f"{P9.number},{P9.names[0]},2021-06-01,1356682091,否,否",
    ]
    return ("\r\n".join(rows) + "\r\n").encode("utf-8")


def build(api: Api) -> Walk:
    walk = Walk(api)
    t = api.tree
    for person, org, joined in (
        (P1, t.base_a, "2021-03-01"),
        (P2, t.base_a, "2021-03-01"),
        (P3, t.base_b, "2021-04-01"),
        (P4, t.base_a, "2021-03-01"),
        (P5, t.base_b, "2021-05-01"),
    ):
        body = {
            "id_number": person.number,
            "name": person.names[0],
            "organization_code": org,
            "joined_on": joined,
            "mobile": person.mobiles[0] if person.mobiles else None,
        }
        person.member_id = walk.post(f"join {person.names[0]}", "/v1/members", body)["member_id"]

    # The registers: a hardship file (it follows P4 on the transfer below) and a model worker.
    hardship = walk.post(
        "hardship file",
        "/v1/hardship-files",
        {
            "member_id": P4.member_id,
            "category": "deep",
            "causes": ["illness", "accident"],
            "household_size": 3,
            "monthly_income_per_head": "480.00",
            "opened_on": "2021-06-01",
        },
    )
    FILE_IDS[:] = [hardship["file_id"]]
    walk.post(
        "model worker",
        "/v1/model-workers",
        {
            "id_number": P1.number,
            "name": P1.names[0],
            "honour": "县级劳动模范",
            "level": "county",
            "awarded_year": 2020,
            "organization_code": t.east,
        },
    )

    key = uuid.uuid4().hex
    content = roster()
    for label in ("roster import", "roster import (replay)"):
        response = upload(api, content, "roster.csv", org=t.base_b, key=key)
        assert response.status_code == 200, response.text
        walk.writes.append((label, response))
    report = response.json()
    assert report["rows_accepted"] == 2 and report["rows_rejected"] == 2
    P6.member_id, P7.member_id = (row["member_id"] for row in report["accepted"])

    walk.post(
        "correction",
        f"/v1/members/{P5.member_id}/corrections",
        {
            "name": P5.names[1],
            "mobile": P5.mobiles[1],
            "note": f"据身份证{P5.number}更正，原号码177-9031-5528",
        },
        status=200,
    )
    transfer = walk.post(
        "transfer",
        f"/v1/members/{P4.member_id}/transfers",
        {"to_organization_code": t.base_w, "effective_on": "2022-03-01", "reason_code": 1},
    )
    walk.post(
        "acceptance",
        f"/v1/members/{P4.member_id}/transfers/{transfer['transfer_id']}/acceptance",
        {"effective_on": "2022-03-05"},
        token="west_clerk",
        status=200,
    )
    transfer = walk.post(
        "transfer to cancel",
        f"/v1/members/{P1.member_id}/transfers",
        {"to_organization_code": t.base_b, "effective_on": "2022-04-01", "reason_code": 1},
    )
    walk.post(
        "cancellation",
        f"/v1/members/{P1.member_id}/transfers/{transfer['transfer_id']}/cancellation",
        status=200,
    )
    walk.post(
        "retention",
        f"/v1/members/{P2.member_id}/retention",
        {"effective_on": "2022-01-01", "reason_code": 3},
        status=200,
    )
    walk.post(
        "reinstatement",
        f"/v1/members/{P2.member_id}/reinstatement",
        {"effective_on": "2022-06-01"},
        status=200,
    )
    walk.post(
        "exit",
        f"/v1/members/{P3.member_id}/exit",
        {"effective_on": "2023-01-01", "change_code": 6, "reason_code": 5},
        status=200,
    )
    walk.post(
        "renaming",
        f"/v1/organizations/{t.base_b}/changes",
        {
            "name": f"北京顺达物流有限公司工会委员会（联系人{P1.mobiles[0]}）",
            "effective_on": "2022-01-01",
        },
        status=200,
    )

    walk.post(
        "dues by member",
        "/v1/funds/dues",
        {
            "organization_code": t.base_a,
            "period": "2021-12",
            "amount": "50.00",
            "received_on": "2021-12-20",
            "members": [
                {"member_id": P1.member_id, "wage": "6000.00", "amount": "30.00"},
                {"member_id": P2.member_id, "wage": "4000.00", "amount": "20.00"},
            ],
        },
    )
    walk.post(
        "dues",
        "/v1/funds/dues",
        {
            "organization_code": t.base_a,
            "period": "2022-02",
            "amount": "5000.00",
            "received_on": "2022-02-20",
        },
    )
    expense = walk.post(
        "expense",
        "/v1/funds/expenses",
        {
            "organization_code": t.base_a,
            "account_code": "501",
            "amount": "300.00",
            "earmarked": False,
            "paid_on": "2022-03-10",
            "description": f"垫付职工医药费，身份证{P1.number}，电话137-2648-1937",
        },
    )
    walk.post(
        "subsidy",
        "/v1/funds/subsidies",
        {
            "payer_organization_code": t.base_a,
            "recipient": {"member_id": P2.member_id},
            "programme": "condolence",
            "amount": "200.00",
            "earmarked": False,
            "approval_ref": f"朝工帮〔2022〕7号 {P2.number}",
            "paid_on": "2022-07-01",
        },
    )
    walk.post(
        "reversal",
        f"/v1/funds/vouchers/{expense['voucher_id']}/reversal",
        {
            "effective_on": "2022-03-20",
            "reason": f"重复报销，联系人 159 3847 2615，证件 {spaced(P3.number)}",
        },
    )

    found = api.post("/v1/members/search", {"id_number": P1.number}, token="auditor")
    assert found.status_code == 200, found.text
    walk.writes.append(("search", found))

    # Errors that echo what was sent: a number in a path, in a field, as a field name.
    walk.refused("member by number", api.get(f"/v1/members/{P1.number}"), 404)
    walk.refused("roll of a number", api.get(f"/v1/organizations/{P2.number}/roll"), 404)
    walk.refused(
        "audit of a number",
        api.get("/v1/audit/events", params={"organization_code": P4.number}),
        404,
    )
    walk.refused(
        "reversal of a number",
        api.post(
            f"/v1/funds/vouchers/{P3.number}/reversal",
            {"effective_on": "2022-03-20", "reason": "x"},
        ),
        404,
    )
    walk.refused(
        "join into a number",
        api.post(
            "/v1/members",
            {
                "id_number": P7.number,
                "name": P7.names[0],
                "organization_code": P1.number,
                "joined_on": "2022-01-01",
            },
            token="east_clerk",
        ),
        422,
    )
    walk.refused(
        "a number as a field name",
        api.post(f"/v1/members/{P1.member_id}/corrections", {P1.mobiles[0]: 1}),
        422,
    )
    walk.refused(
        "a bad mobile",
        api.post(f"/v1/members/{P1.member_id}/corrections", {"mobile": P1.mobiles[0][:-1]}),
        422,
    )
    walk.refused(
        "joining twice",
        api.post(
            "/v1/members",
            {
                "id_number": P1.number,
                "name": P1.names[0],
                "organization_code": t.base_b,
                "joined_on": "2022-01-01",
            },
        ),
        409,
    )
    # A reconciliation run over a bank statement whose lines name people: a 摘要 with an
    # identity number, a person as 对方户名, a mobile, and a row that cannot be read.
    statement = "\r\n".join(
        [
            "中国工商银行 账户明细",
            "交易日期,摘要,借方发生额,贷方发生额,余额,对方户名,对方账号",
            f"2022-03-05,慰问金 身份证{P1.number},500.00,,,{P2.names[0]},6222020000000000001",
            f"2022-03-06,联系{P4.mobiles[0]},,10.00,,国家金库,1",
            f"2022-03-3x,{P3.number},1.00,,,{P5.names[0]},",
        ]
    ).encode("gbk")
    key = uuid.uuid4().hex
    for label in ("reconciliation run", "reconciliation run (replay)"):
        response = api.post(
            "/v1/reconciliations",
            token="east_clerk",
            key=key,
            data={"organization_code": t.east, "period": "2022-03"},
            files={"bank_file": ("对账单.csv", statement, "text/csv")},
        )
        assert response.status_code == 201, response.text
        walk.writes.append((label, response))
    walk.run_id = response.json()["run_id"]
    walk.post(
        "sign-off",
        f"/v1/reconciliations/{walk.run_id}/sign-off",
        {"note": f"已核对，慰问金收款人身份证{P4.number}"},
        token="east_auditor",
        status=200,
    )
    RUN_IDS.append(walk.run_id)
    return walk


# --- the GET endpoints and the values that fill their parameters ------------------------------


def path_values(api: Api) -> dict[str, list[str]]:
    t = api.tree
    journal = api.get(
        f"/v1/organizations/{t.base_a}/journal",
        params={"from": "2000-01-01", "to": TODAY, "page_size": 1000},
    )
    assert journal.status_code == 200, journal.text
    return {
        "code": [t.root, t.east, t.base_a, t.base_b, t.base_w],
        "member_id": [p.member_id for p in PEOPLE if p.stored],
        "run_id": [RUN_IDS[-1]],
        "voucher_id": sorted({line["voucher_id"] for line in journal.json()["items"]}),
        "file_id": FILE_IDS,
    }


# Each query parameter the walk knows, with the values it tries (None: left out). A
# parameter with an enum in the document takes all its values instead.
QUERY_VALUES: dict[str, list[Any]] = {
    "as_of": [None, "2022-06-30"],
    "known_at": [None],
    "from": ["2000-01-01"],
    "to": [TODAY],
    "page": [None],
    "page_size": [1000],
    "status": [None],
    "after": [0],
    "limit": [1000],
    "organization_code": [None, "base_a"],
    "region_code": ["110105"],
    "on": [TODAY],
}


def get_routes(api: Api) -> dict[str, list[dict[str, Any]]]:
    """Every GET route: those in the OpenAPI document with their parameters, and those the
    application serves outside it (the document itself, the docs pages)."""
    document = api.client.get("/openapi.json").json()
    routes = {
        path: ops["get"].get("parameters", [])
        for path, ops in document["paths"].items()
        if "get" in ops
    }
    app = api.server.server.config.app
    for route in app.routes:
        if "GET" in (getattr(route, "methods", None) or ()) and hasattr(route, "path"):
            routes.setdefault(route.path, [])
    return routes


def requests_for(
    api: Api, path: str, parameters: list[dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (URL, query) the walk sends to one route."""
    by_path = path_values(api)
    path_choices: list[list[tuple[str, str]]] = []
    query_choices: list[list[tuple[str, Any]]] = []
    for parameter in parameters:
        name, where = parameter["name"], parameter["in"]
        if where == "path":
            assert name in by_path, f"{path}: no values for the path parameter {name}"
            path_choices.append([(name, v) for v in by_path[name]])
        elif where == "query":
            enum = parameter.get("schema", {}).get("enum") or next(
                (s["enum"] for s in parameter.get("schema", {}).get("anyOf", []) if "enum" in s),
                None,
            )
            if enum:
                query_choices.append([(name, v) for v in enum])
                continue
            assert name in QUERY_VALUES or not parameter.get("required"), (
                f"{path}: no values for the required query parameter {name}"
            )
            values = QUERY_VALUES.get(name, [None])
            query_choices.append(
                [(name, getattr(api.tree, v, v) if isinstance(v, str) else v) for v in values]
            )
    for path_combo in itertools.product(*path_choices):
        url = path
        for name, value in path_combo:
            url = url.replace("{" + name + "}", value)
        for query_combo in itertools.product(*query_choices):
            yield url, {k: v for k, v in query_combo if v is not None}


def fetch_all(api: Api, url: str, query: dict[str, Any], token: str) -> Iterator[httpx.Response]:
    """One request, or for the audit stream every page of it, one at a time."""
    while True:
        response = api.get(url, token=token, params=query)
        assert response.status_code == 200, (url, query, response.status_code, response.text[:300])
        yield response
        if url != "/v1/audit/events" or not response.json()["items"]:
            return
        query = {**query, "after": response.json()["items"][-1]["position"]}


def walk_gets(api: Api, token: str) -> Iterator[tuple[str, str, dict[str, Any], httpx.Response]]:
    """(route, URL, query, answer) for every request of the walk. Each is yielded before the
    next is sent: the events the answer left are the newest in the store."""
    routes = get_routes(api)
    exercised: set[str] = set()
    for path, parameters in sorted(routes.items()):
        for url, query in requests_for(api, path, parameters):
            for response in fetch_all(api, url, query, token):
                exercised.add(path)
                yield path, url, query, response
    assert exercised == set(routes), f"GET routes not walked: {set(routes) - exercised}"


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walk(api: Api) -> Walk:
    return build(api)


def test_no_output_shows_personal_data_to_a_token_without_the_pii_flag(walk: Walk) -> None:
    api = walk.api
    ledger = api.backend.open()
    start = ledger.head_position()
    shown: list[str] = []
    found: list[str] = []
    for label, response in walk.writes + walk.errors:
        text, items = as_text(response)
        walk.outputs, walk.items = walk.outputs + 1, walk.items + items
        found += [f"{label}: {secret}" for secret in leaks(text)]
        shown.append(text)
    for path, url, query, response in walk_gets(api, MASKED_TOKEN):
        text, items = as_text(response)
        walk.outputs, walk.items = walk.outputs + 1, walk.items + items
        found += [f"GET {url} {query}: {secret}" for secret in leaks(text)]
        shown.append(text)
        if path == "/v1/audit/events":
            found += [
                f"GET {url} {query}: the fingerprint of event {e['position']}"
                for e in response.json()["items"]
                if "fingerprint" in (e["data"] or {})
            ]
    assert not found, "\n".join(found[:50])
    print(
        f"\nprivacy walk ({api.backend.kind}): {walk.outputs} outputs "
        f"({len(walk.writes)} write answers and replays, {len(walk.errors)} errors, "
        f"{walk.outputs - len(walk.writes) - len(walk.errors)} GET answers), "
        f"{walk.items} items"
    )

    # The walk saw the people, masked: it is not passing for having read nothing.
    everything = "\n".join(shown)
    for person in PEOPLE[:7]:
        assert mask_id_number(person.number) in everything
        assert all(mask_name(name) in everything for name in person.names)
        assert all(mask_mobile(mobile) in everything for mobile in person.mobiles)
        assert f'"birth_year": {person.birth.year}' in everything
    for typed in (
        "身份证110105********",
        "137-****-1937",
        "159 **** 2615",
        f"〔2022〕7号 {mask_id_number(P2.number)}",
    ):
        assert typed in everything
    # Nothing was read unmasked, so nothing was recorded as such.
    assert not [
        e for e in events_after(ledger, start) if type(e).__qualname__ == "PiiRead.Recorded"
    ]


def test_a_pii_token_sees_the_data_and_every_such_reading_is_recorded(walk: Walk) -> None:
    api = walk.api
    ledger = api.backend.open()
    stored = [p for p in PEOPLE if p.stored]
    shown: list[str] = []
    recorded: set[str] = set()
    seen = ledger.head_position()
    for path, url, query, response in walk_gets(api, PII_TOKEN):
        text, _ = as_text(response)
        shown.append(text)
        new = events_after(ledger, seen)
        seen = ledger.head_position()
        reads = [e for e in new if type(e).__qualname__ == "PiiRead.Recorded"]
        if not any(secret in text for person in stored for secret in person.secrets()):
            assert not reads, f"GET {url} {query} showed nothing personal but recorded a read"
            continue
        # The answer showed personal data: the one event it left records that reading.
        assert len(reads) == 1, f"GET {url} {query} showed personal data: {len(reads)} reads"
        purpose = reads[0].purpose
        assert purpose.startswith(f"GET {path}"), (url, purpose)
        if "format" in query:
            assert purpose.endswith(f"format={query['format']}"), (url, query, purpose)
        recorded.add(path)
        if path == "/v1/members/{member_id}":
            assert reads[0].member_ids == [url.rsplit("/", 1)[1]]
    everything = "\n".join(shown)
    for person in stored:
        for secret in (person.number, person.birth.isoformat(), *person.names, *person.mobiles):
            assert secret in everything, secret
    assert f"身份证{P1.number}" in everything and f"证件 {spaced(P3.number)}" in everything
    for path in (
        "/v1/members/{member_id}",
        "/v1/organizations/{code}/roll",
        "/v1/organizations/{code}/roll/changes",
        "/v1/organizations/{code}/journal",
        "/v1/audit/events",
    ):
        assert path in recorded, path
    # The refused rows of the import were never stored anywhere.
    for person in (P8, P9):
        assert person.number not in everything and person.names[0] not in everything
