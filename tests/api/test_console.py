"""The console over real HTTP (a uvicorn server on each store), read as a browser would: the
cookie and CSRF rules of signing in and out, scope and masking as the API has them, the trail
from a statement amount to the events behind it, and pages that need nothing from elsewhere.
The same walk in a real browser is tests/api/test_console_browser.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from service.tokens import Tokens
from tests.api.conftest import Api, _open_api
from tests.api.console_walk import (
    MEMBER_NAME,
    Walk,
    build_walk,
    csrf_of,
    signed_in,
)
from tests.conftest import BACKENDS
from tests.projections.test_audit import Raw


@pytest.fixture(scope="module")
def walk(api: Api) -> Walk:
    return build_walk(api)


@pytest.fixture
def auditor(api: Api) -> Iterator[httpx.Client]:
    client = signed_in(api, "east_auditor")
    yield client
    client.close()


def test_sign_in_keeps_the_token_in_a_strict_httponly_cookie(api: Api) -> None:
    with httpx.Client(base_url=api.server.url, timeout=60) as client:
        assert client.get("/").headers["location"] == "/console"
        unsigned = client.get("/console/organizations/" + api.tree.east)
        assert unsigned.status_code == 303
        assert unsigned.headers["location"].startswith("/console/sign-in?next=")
        form = client.get("/console/sign-in")
        assert '<html lang="zh-CN">' in form.text and "登录" in form.text
        csrf = csrf_of(form.text)
        # A form without the CSRF value, or from another site, is refused and signs nobody in.
        token = api.tokens["east_auditor"]
        no_csrf = client.post("/console/sign-in", data={"token": token})
        assert no_csrf.status_code == 403 and "ledger_session" not in no_csrf.headers.get(
            "set-cookie", ""
        )
        cross_site = client.post(
            "/console/sign-in",
            data={"token": token, "csrf": csrf},
            headers={"Origin": "http://evil.example"},
        )
        assert cross_site.status_code == 403
        wrong = client.post("/console/sign-in", data={"token": "nope", "csrf": csrf})
        assert wrong.status_code == 401 and "令牌无效" in wrong.text
        signed = client.post(
            "/console/sign-in", data={"token": token, "csrf": csrf, "next": "https://evil.example"}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/console"
        cookies = signed.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("ledger_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        assert token not in signed.headers["location"]
        home = client.get("/console")
        assert home.status_code == 200 and "经审人员" in home.text
        assert token not in home.text  # the page never shows the token back
        assert "default-src 'self'" in home.headers["content-security-policy"]
        # Sign-out needs the CSRF value too, then forgets the token.
        assert client.post("/console/sign-out", data={}).status_code == 403
        assert client.get("/console").status_code == 200
        out = client.post("/console/sign-out", data={"csrf": csrf_of(home.text)})
        assert out.status_code == 303
        assert any(
            c.startswith("ledger_session=") and "Max-Age=0" in c
            for c in out.headers.get_list("set-cookie")
        )
        assert client.get("/console").status_code == 303


def test_a_revoked_token_signs_the_console_out(api: Api) -> None:
    tokens = Tokens(api.backend.open())
    principal, secret = tokens.mint(role="auditor", organization_code=api.tree.east)
    api.tokens["short_lived"] = secret
    client = signed_in(api, "short_lived")
    try:
        assert client.get("/console").status_code == 200
        tokens.revoke(principal.token_id)
        deadline = time.monotonic() + 10  # revocation reaches every process within 5 seconds
        while client.get("/console").status_code != 303 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.get("/console").status_code == 303
    finally:
        client.close()


def test_find_the_county_and_browse_within_scope(api: Api, walk: Walk, auditor) -> None:
    found = auditor.get("/console", params={"q": "朝阳"})
    assert found.status_code == 200
    assert f"/console/organizations/{walk.county}" in found.text
    assert "海淀区总工会" not in auditor.get("/console", params={"q": "区总工会"}).text
    page = auditor.get(f"/console/organizations/{walk.county}")
    assert page.status_code == 200
    assert walk.county_name in page.text and "入会率" in page.text
    assert "北京星火科技有限公司工会委员会" in page.text  # a child union, one click away
    assert "银行存款（102）" in page.text and "应付上级经费" in page.text
    # Members at a glance count the unions below (the walk's one member is in base union A).
    assert 'id="members-active">1<' in page.text
    assert auditor.get(f"/console/organizations/{api.tree.west}").status_code == 403
    assert auditor.get(f"/console/organizations/{api.tree.root}").status_code == 403
    assert auditor.get("/console/organizations/NOPE").status_code == 404
    bad = auditor.get("/console", params={"q": "a\x00b"})
    assert bad.status_code == 422


def test_a_clerk_of_another_union_gets_no_access(api: Api, walk: Walk) -> None:
    client = signed_in(api, "west_clerk")
    try:
        paths = [
            f"/console/organizations/{walk.county}",
            f"/console/organizations/{walk.county}/roll",
            f"/console/organizations/{walk.county}/statements/income-expenditure",
            f"/console/organizations/{walk.county}/journal",
            f"/console/organizations/{walk.county}/export/roll.csv",
        ]
        for path in paths:
            response = client.get(path)
            assert response.status_code == 403, path
            assert walk.county_name not in response.text
        # A voucher of the county's books is unknown to it, as it is to the API.
        voucher = client.get(f"/console/vouchers/{walk.kept_voucher}")
        assert voucher.status_code == 404
        assert walk.county not in client.get("/console", params={"q": "朝阳"}).text
    finally:
        client.close()


def _amount_402(page: str) -> str:
    row = re.search(r'<tr class="parent" data-account="402">(.*?)</tr>', page, re.S)
    assert row is not None
    amounts = re.findall(r'<td class="num amount"><a href="([^"]+)">([^<]+)</a>', row.group(1))
    assert amounts, row.group(1)
    return amounts[0][1]


def test_from_an_amount_to_the_events_behind_it(api: Api, walk: Walk, auditor) -> None:
    base = f"/console/organizations/{walk.county}"
    period = {"from": "2025-01-01", "to": "2025-12-31"}
    statement = auditor.get(f"{base}/statements/income-expenditure", params=period)
    assert statement.status_code == 200 and "收入支出表（工会02表）" in statement.text
    assert _amount_402(statement.text) == walk.amount_now
    link = re.search(
        r'data-account="402">.*?<td class="num amount"><a href="([^"]+)"', statement.text, re.S
    )
    assert link is not None
    journal = auditor.get(link.group(1).replace("&amp;", "&"))
    assert journal.status_code == 200 and "序时账：402" in journal.text
    assert "400.00" in journal.text and "2,000.00" in journal.text and "红字冲销" in journal.text
    assert f"/console/vouchers/{walk.kept_voucher}" in journal.text
    voucher = auditor.get(f"/console/vouchers/{walk.kept_voucher}")
    assert voucher.status_code == 200
    assert "✓ 已核验" in voucher.text and "签名有效" in voucher.text
    assert f"封印至序号 {walk.seal_position}" in voucher.text
    reversed_page = auditor.get(f"/console/vouchers/{walk.reversed_voucher}")
    assert "被此凭证冲销" in reversed_page.text
    # Every other statement renders, with its own links and exports.
    sheet = auditor.get(f"{base}/statements/balance-sheet", params={"as_of": "2025-12-31"})
    assert sheet.status_code == 200 and "资产负债表（工会01表）" in sheet.text
    trial = auditor.get(f"{base}/statements/trial-balance", params=period)
    assert trial.status_code == 200 and "借方发生额" in trial.text
    export = auditor.get(f"{base}/export/income-expenditure.csv", params=period)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "收入支出表" in export.content.decode("utf-8-sig")
    assert auditor.get(f"{base}/export/nothing.csv").status_code == 404


def test_known_at_before_the_correction_shows_the_old_figure(api: Api, walk: Walk, auditor) -> None:
    base = f"/console/organizations/{walk.county}"
    period = {"from": "2025-01-01", "to": "2025-12-31"}
    then = auditor.get(
        f"{base}/statements/income-expenditure",
        params={**period, "known_at": walk.before_reversal},
    )
    assert _amount_402(then.text) == walk.amount_before
    compared = auditor.get(
        f"{base}/compare/income-expenditure",
        params={**period, "known_at_a": walk.before_reversal, "known_at_b": ""},
    )
    assert compared.status_code == 200
    row = re.search(r'<tr class="changed" data-account="402">(.*?)</tr>', compared.text, re.S)
    assert row is not None and "≠ 有变化" in row.group(1)
    assert walk.amount_before in row.group(1) and walk.amount_now in row.group(1)
    surplus = re.search(
        r'<tr class="total changed"><td></td><th>收支结余</th>(.*?)</tr>', compared.text, re.S
    )
    assert surplus is not None and walk.amount_before in surplus.group(1)
    bad = auditor.get(f"{base}/statements/income-expenditure", params={"known_at": "yesterday"})
    assert bad.status_code == 422


def test_masked_pages_show_no_personal_data_and_unmasked_views_are_recorded(
    api: Api, walk: Walk, auditor
) -> None:
    base = f"/console/organizations/{api.tree.base_a}"
    compact_birth = walk.member_birth.replace("-", "")
    county = f"/console/organizations/{walk.county}"
    assert "欧***" not in auditor.get(f"{county}/roll").text  # the county's own roll is empty
    for path in (
        f"{base}/roll",
        f"{base}/changes?from=2020-01-01",
        f"{county}/roll?scope=subtree",
        f"{county}/changes?from=2020-01-01&scope=subtree",
    ):
        page = auditor.get(path)
        assert page.status_code == 200, path
        for secret in (walk.member_id_number, MEMBER_NAME, walk.member_birth, compact_birth):
            assert secret not in page.text, (path, secret)
        assert "欧***" in page.text
    export = auditor.get(f"{county}/export/roll.csv", params={"scope": "subtree"})
    assert export.status_code == 200 and "欧***" in export.content.decode("utf-8-sig")
    assert walk.member_id_number not in export.text
    # A pii token sees the whole record, and its view is recorded as the API records it.
    before = _pii_reads(api)
    pii = signed_in(api, "east_clerk_pii")
    try:
        page = pii.get(f"{base}/roll")
        assert walk.member_id_number in page.text and MEMBER_NAME in page.text
    finally:
        pii.close()
    assert _pii_reads(api) == before + 1


def _pii_reads(api: Api) -> int:
    count, after = 0, 0
    while True:
        page = api.get("/v1/audit/events", params={"after": after, "limit": 1000}).json()
        count += sum(e["type"].startswith("ledger:PiiRead") for e in page["items"])
        if page["next_after"] is None:
            return count
        after = page["next_after"]


def test_verification_page(api: Api, walk: Walk) -> None:
    admin = signed_in(api, "auditor")
    try:
        page = admin.get("/console/verification")
        assert page.status_code == 200 and "审计链核验" in page.text
        assert "最近的封印" in page.text and f"<td>{walk.seal_position}</td>" in page.text
        assert "已证明至序号" in page.text
    finally:
        admin.close()
    scoped = signed_in(api, "east_auditor")
    try:
        assert scoped.get("/console/verification").status_code == 403
    finally:
        scoped.close()


def test_docs_and_console_load_nothing_from_another_host(api: Api, auditor) -> None:
    with httpx.Client(base_url=api.server.url, timeout=60) as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            assert sources and all(s.startswith("/") for s in sources), sources
            for source in sources:
                if source != "/openapi.json":
                    assert client.get(source).status_code == 200, source
    page = auditor.get("/console/organizations/" + api.tree.east)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)
    query = urlencode({"q": "朝阳"})
    assert auditor.get(f"/console?{query}").status_code == 200


def test_charts_of_members_over_time_and_the_fund_flow(api: Api, walk: Walk, auditor) -> None:
    base = f"/console/organizations/{walk.county}/charts"
    page = auditor.get(base, params={"from": "2020-01-01", "to": "2020-12-31"})
    assert page.status_code == 200
    assert page.text.count("<svg") == 3 and "<script" not in page.text.split("</head>")[1]
    # The walk's member joined base union A on 2020-05-01: one join in May, in the chart's
    # own label and in the table beside it.
    table = re.search(r'<table class="data" id="members-table">(.*?)</table>', page.text, re.S)
    assert table is not None
    may = re.search(r"<tr><td>2020-05</td>(.*?)</tr>", table.group(1), re.S)
    assert may is not None and re.findall(r">(\d+)<", may.group(1)) == ["1", "0", "0", "0"]
    assert "2020-05 入会: 1" in page.text
    # Members per child union at the end of the period: base union A holds the one member.
    children = re.search(r'<table class="data" id="children-table">(.*?)</table>', page.text, re.S)
    assert children is not None
    assert re.search(r"北京星火科技有限公司工会委员会</td><td class=\"num\">1<", children.group(1))
    assert re.search(r"北京顺达物流有限公司工会委员会</td><td class=\"num\">0<", children.group(1))
    flow = auditor.get(base, params={"from": "2025-01-01", "to": "2025-12-31", "scope": "self"})
    rows = re.search(r'<table class="data" id="flow-table">(.*?)</table>', flow.text, re.S)
    assert rows is not None
    assert "402 拨缴经费收入" in rows.group(1) and walk.amount_now in rows.group(1)
    assert "上解上级经费（211 借方）" in rows.group(1)
    too_long = auditor.get(base, params={"from": "2020-01-01", "to": "2025-12-31"})
    assert too_long.status_code == 422


def test_the_journal_by_account_over_the_api(api: Api, walk: Walk) -> None:
    path = f"/v1/organizations/{walk.county}/journal"
    period = {"from": "2025-01-01", "to": "2025-12-31"}
    lines = api.get(path, params={**period, "account_code": "402"}, token="east_auditor").json()
    assert lines["total"] == 3 and {i["account_code"] for i in lines["items"]} == {"402"}
    every = api.get(path, params=period, token="east_auditor").json()
    assert every["total"] > lines["total"]
    payables = api.get(path, params={**period, "account_code": "21"}, token="east_auditor")
    assert payables.status_code == 422  # not an account of the chart
    assert api.get(path, params={"account_code": "4x"}).status_code == 422


@pytest.mark.parametrize("kind", BACKENDS)
def test_the_verification_page_names_the_first_bad_position(
    kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A deployment of its own, tampered with behind the server's back."""
    opened = _open_api(kind, tmp_path_factory.mktemp(f"console-tamper-{kind}"))
    api = next(opened)
    try:
        walk = build_walk(api)
        raw = Raw(api.backend)
        try:
            [event] = [
                e
                for e in api.get("/v1/audit/events", params={"limit": 1000}).json()["items"]
                if e["stream_id"] == walk.kept_voucher
            ]
            raw.flip_byte(event["position"], 40)
        finally:
            raw.close()
        api.join(api.tree.base_b)  # a new event: the cached verification is stale
        client = signed_in(api, "auditor")
        try:
            page = client.get("/console/verification")
            assert page.status_code == 200 and "✗ 未通过" in page.text
            assert f"首个有问题的序号：{event['position']}" in page.text
            voucher = client.get(f"/console/vouchers/{walk.kept_voucher}")
            assert "✗ 核验失败" in voucher.text
        finally:
            client.close()
    finally:
        for _ in opened:
            pass
