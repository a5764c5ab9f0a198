"""Hostile input against the real server: fuzzed amounts, identity numbers, credit codes,
dates and roster files. Nothing is a 5xx, and nothing invalid is ever accepted: an accepted
value is exactly one that the rules allow (checked against python-stdnum and the amount
grammar of the contract)."""

from __future__ import annotations

import csv
import datetime
import io
import re
import uuid
import zipfile
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from stdnum.cn import ric, uscc

from scripts.synthetic import union_code
from tests.api.conftest import Api, person
from tests.reliability.report import record

EXAMPLES = 400
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
AMOUNT = re.compile(r"(0|[1-9][0-9]{0,13})(\.[0-9]{1,2})?")  # the contract: < 10^14 yuan
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
tried: dict[str, int] = {}


def count(kind: str) -> None:
    tried[kind] = tried.get(kind, 0) + 1


def decimal_texts() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats().map(repr),
        st.builds(lambda i, f: f"{i}.{f}", st.integers(0, 10**6), st.integers(0, 10**12)),
        st.builds(lambda m, e: f"{m}e{e}", st.integers(-999, 999), st.integers(-30, 30)),
        st.sampled_from(
            [
                "",
                " ",
                "1,000.00",
                "¥12",
                "12.",
                ".5",
                "+5",
                "0x10",
                "1_000",
                "NaN",
                "-0",
                "0.00",
                "00.5",
                "1e2",
                "9" * 40,
                " 12.00",
                "12.00 ",
            ]
        ),
    )
    full_width = numbers.map(lambda s: s.translate(FULL_WIDTH))
    return st.one_of(numbers, full_width, st.text(max_size=30))


def valid_amount(text: str) -> bool:
    return bool(AMOUNT.fullmatch(text)) and Decimal(text) > 0


@given(amount=decimal_texts())
@FUZZ
@pytest.mark.slow
def test_fuzzed_amounts(api: Api, amount: str) -> None:
    count("amounts")
    response = api.post(
        "/v1/funds/dues",
        {
            "organization_code": api.tree.base_a,
            "period": "2024-06",
            "amount": amount,
            "received_on": "2024-06-20",
        },
        token="a_clerk",
    )
    assert response.status_code in (201, 422), (amount, response.status_code, response.text)
    assert (response.status_code == 201) == valid_amount(amount), (amount, response.text)
    if response.status_code == 201:
        credited = [
            Decimal(p["credit"]) for p in response.json()["postings"] if p["credit"] != "0.00"
        ]
        assert credited == [Decimal(amount)]


def id_texts() -> st.SearchStrategy[str]:
    valid = st.integers(1, 5000).map(person)
    return st.one_of(
        valid,
        valid.map(lambda s: s[:-1] + ("0" if s[-1] != "0" else "1")),  # wrong check digit
        valid.map(lambda s: s.translate(FULL_WIDTH)),
        valid.map(str.lower),
        valid.map(lambda s: s[:17]),
        valid.map(lambda s: s + "0"),
        valid.map(lambda s: s[:6] + "2099" + s[10:]),  # born in the future
        st.text(alphabet="0123456789Xx", min_size=15, max_size=19),
        st.text(max_size=25),
    )


@given(id_number=id_texts())
@FUZZ
@pytest.mark.slow
def test_fuzzed_identity_numbers(api: Api, id_number: str) -> None:
    count("identity_numbers")
    response = api.post(
        "/v1/members",
        {
            "id_number": id_number,
            "name": "测试",
            "organization_code": api.tree.base_a,
            "joined_on": "2021-01-01",
        },
    )
    assert response.status_code in (201, 409, 422), (id_number, response.text)
    if response.status_code in (201, 409):  # 409: accepted as a number, already a member
        canonical = id_number.upper()  # a lower-case check letter x is read as X
        assert re.fullmatch(r"[0-9]{17}[0-9X]", canonical) and ric.is_valid(canonical)
        born = ric.get_birth_date(canonical)
        assert born <= datetime.date(2021, 1, 1)


def code_texts() -> st.SearchStrategy[str]:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    valid = st.integers(10, 10**6).map(lambda n: union_code("110105", n, base=True))
    return st.one_of(
        valid,
        valid.map(lambda s: s[:-1] + ("0" if s[-1] != "0" else "1")),
        valid.map(str.lower),
        st.text(alphabet=alphabet, min_size=17, max_size=19),
        st.text(max_size=20),
        st.just("91110000600037341L").map(lambda s: s.translate(FULL_WIDTH)),
    )


@given(
    code=code_texts(),
    founded=st.one_of(
        st.dates().map(str),
        st.text(max_size=12),
        st.sampled_from(
            [
                "2024-02-30",
                "2023-02-29",
                "2024-1-1",
                "２０２４-01-01",
                "0000-01-01",
                "99999-01-01",
                "2024-01-01T00:00:00",
                "20240101",
            ]
        ),
    ),
)
@FUZZ
@pytest.mark.slow
def test_fuzzed_credit_codes_and_dates(api: Api, code: str, founded: str) -> None:
    count("credit_codes_and_dates")
    response = api.post(
        "/v1/organizations",
        {
            "code": code,
            "name": "测试工会",
            "level": "base",
            "parent_code": api.tree.east,
            "region_code": "110105",
            "founded_on": founded,
            "employer_code": api.tree.employer_b,
            "employee_count": 10,
        },
    )
    assert response.status_code in (201, 409, 422), (code, founded, response.text)
    well_formed = bool(re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", founded))
    if well_formed:
        try:
            well_formed = datetime.date(1949, 10, 1) <= datetime.date.fromisoformat(founded)
        except ValueError:
            well_formed = False
    if response.status_code == 201:
        assert uscc.is_valid(code) and code.isascii() and well_formed
    elif (
        code.isascii()
        and code == code.upper()
        and uscc.is_valid(code)
        and well_formed
        and "2000-01-01" <= founded <= datetime.date.today().isoformat()
    ):
        # A valid code founded after its parent may be refused only as a duplicate.
        assert response.status_code == 409, (code, founded, response.text)


def upload(api: Api, content: bytes, filename: str):
    return api.client.post(
        "/v1/members/imports",
        headers=api.headers("admin", uuid.uuid4().hex),
        data={"organization_code": api.tree.base_b},
        files={"file": (filename, content, "application/octet-stream")},
    )


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


HEADER = ["id_number", "name", "joined_on", "mobile", "migrant_worker", "new_employment_form"]
cells = st.one_of(
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.dates().map(str),
)


@given(
    rows=st.lists(st.lists(cells, max_size=8), max_size=12),
    as_xlsx=st.booleans(),
    header=st.booleans(),
    damage=st.integers(0, 3),
    cut=st.integers(0, 4000),
)
@FUZZ
@pytest.mark.slow
def test_fuzzed_rosters(api: Api, rows, as_xlsx: bool, header: bool, damage: int, cut: int) -> None:
    count("roster_files")
    table = ([HEADER] if header else []) + rows
    if as_xlsx:
        clean = [
            [ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in r]
            for r in table
        ]  # text a worksheet cannot hold at all
        content, name = xlsx_bytes(clean), "r.xlsx"
    else:
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["" if c is None else str(c) for c in r] for r in table])
        content, name = buffer.getvalue().encode("utf-8", errors="surrogatepass"), "r.csv"
    if damage == 1:
        content = content[:cut]  # truncated file
    elif damage == 2:
        content = content.replace(b",", b'"', 3)  # unbalanced quotes
    elif damage == 3 and as_xlsx:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = archive.namelist()
        content = content.replace(names[-1].encode(), b"x" * len(names[-1]))
    response = upload(api, content, name)
    assert response.status_code in (200, 413, 415, 422), (response.status_code, response.text)
    if response.status_code == 200:
        report = response.json()
        # One outcome per data row at most (damage can only merge or cut rows).
        lines = len(rows) if as_xlsx else content.count(b"\n") + content.count(b"\r") + 1
        assert len(report["accepted"]) + len(report["rejected"]) <= max(len(rows), lines) + 1


def test_figures(api: Api) -> None:
    """Runs last in this module: reports how many inputs were tried."""
    if tried:
        record("hostile_input", {"backend": api.backend.kind, **tried})
        tried.clear()  # the next backend counts its own


@pytest.mark.parametrize(
    "params",
    [{"page_size": 1001}, {"page_size": 0}, {"page": 0}, {"page": 10**7}, {"page_size": "1e3"}],
)
def test_every_list_is_bounded(api: Api, params: dict) -> None:
    for path in (
        f"/v1/organizations/{api.tree.base_a}/roll",
        f"/v1/organizations/{api.tree.base_a}/roll/changes",
        f"/v1/organizations/{api.tree.base_a}/journal",
    ):
        assert api.get(path, params=params).status_code == 422, (path, params)
    assert api.get("/v1/audit/events", params={"limit": 10**9}).status_code == 422
