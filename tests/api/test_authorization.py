"""The authorisation matrix: every endpoint x role x inside/outside scope x no/unknown token.

Every case targets something inside 朝阳区 (east). Tokens scoped to east are inside, tokens
scoped to 海淀区 (west) outside, unscoped tokens deployment-wide. Expected: 401 without a
known token, 403 outside the role or the scope, 2xx otherwise; except that a member outside the
scope is answered as an unknown one (404), so that no answer tells a token where a person is a
member.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from domain.base import stable_id
from scripts.synthetic import employer_code, union_code
from tests.api.conftest import EAST_REGION, SHARES, WEST_REGION, Api

READ = {"clerk", "auditor", "admin"}
WRITE = {"clerk", "admin"}
AUDIT = {"auditor", "admin"}
ADMIN = {"admin"}
TOKENS = {  # name: (role, where)
    "admin": ("admin", "everywhere"),
    "clerk": ("clerk", "everywhere"),
    "auditor": ("auditor", "everywhere"),
    "east_admin": ("admin", "inside"),
    "east_clerk": ("clerk", "inside"),
    "east_auditor": ("auditor", "inside"),
    "west_clerk": ("clerk", "outside"),
    "west_auditor": ("auditor", "outside"),
}
_serial = itertools.count(5000)
# Cases that name a member: outside the scope, 404 as for an unknown member.
ADDRESSING_A_MEMBER = {
    "search",
    "get member",
    "history",
    "start transfer",
    "accept transfer",
    "cancel transfer",
    "retain",
    "reinstate",
    "exit",
    "correct",
}


@dataclass(frozen=True)
class Case:
    name: str
    roles: set[str]
    scoped: bool  # False: the resource has no organisation (policies, the audit chain)
    make: Callable[[Api], tuple[str, str, dict[str, Any]]]  # -> (method, path, kwargs)
    deployment_wide: bool = False
    allowed: str = "2xx"  # what an authorised caller gets

    @property
    def outside(self) -> str:
        """What a caller of the right role outside the scope gets."""
        return "404" if self.name in ADDRESSING_A_MEMBER else "403"

    def expected(self, token: str) -> str:
        role, where = TOKENS[token]
        if role not in self.roles:
            return "403"
        if self.deployment_wide and where != "everywhere":
            return "403"
        if self.scoped and where == "outside":
            return self.outside
        return self.allowed


def member(api: Api) -> str:
    return api.join(api.tree.base_a)["member_id"]


def new_base(api: Api) -> dict[str, Any]:
    n = next(_serial)
    return {
        "code": union_code(EAST_REGION, n, base=True),
        "name": "北京新星电子有限公司工会",
        "level": "base",
        "parent_code": api.tree.east,
        "region_code": EAST_REGION,
        "founded_on": "2005-01-01",
        "employer_code": employer_code(EAST_REGION, n),
        "employee_count": 50,
    }


def dissolvable(api: Api) -> str:
    body = new_base(api)
    assert api.post("/v1/organizations", body).status_code == 201
    return body["code"]


def pending(api: Api) -> tuple[str, str]:
    member_id = member(api)
    started = api.post(
        f"/v1/members/{member_id}/transfers",
        {"to_organization_code": api.tree.base_b, "effective_on": "2021-01-01", "reason_code": 1},
    )
    return member_id, started.json()["transfer_id"]


def retained(api: Api) -> str:
    member_id = member(api)
    api.post(f"/v1/members/{member_id}/retention", {"effective_on": "2021-01-01", "reason_code": 2})
    return member_id


def expense(api: Api) -> str:
    return api.post(
        "/v1/funds/expenses",
        {
            "organization_code": api.tree.base_a,
            "account_code": "501",
            "amount": "1.00",
            "earmarked": False,
            "description": "慰问品",
            "paid_on": "2024-05-02",
        },
    ).json()["voucher_id"]


def roster(api: Api) -> dict[str, Any]:
    content = f"id_number,name,joined_on\n{api.next_person()},钱进,2021-01-01\n".encode()
    return {
        "data": {"organization_code": api.tree.base_a},
        "files": {"file": ("roster.csv", content, "text/csv")},
    }


def month(api: Api) -> str:
    """The month after base A's last closed one (months close in order), from 2001-01."""
    last = api.get(f"/v1/organizations/{api.tree.base_a}/periods").json()["last_closed"]
    if last is None:
        return "2001-01"
    year, number = map(int, last.split("-"))
    return f"{year + number // 12}-{number % 12 + 1:02d}"


def policy_day() -> str:
    return (datetime.date(2030, 1, 1) + datetime.timedelta(days=next(_serial))).isoformat()


def j(body: dict[str, Any]) -> dict[str, Any]:
    return {"json": body}


A = "/v1/organizations/{a}"
CASES = [
    Case(
        "found organisation",
        WRITE,
        True,
        lambda api: ("POST", "/v1/organizations", j(new_base(api))),
    ),
    Case(
        "found root",
        ADMIN,
        False,
        lambda api: (
            "POST",
            "/v1/organizations",
            j(
                {
                    "code": union_code("120000", next(_serial), base=False),
                    "name": "天津市总工会",
                    "level": "province",
                    "parent_code": None,
                    "region_code": "120000",
                    "founded_on": "2000-01-01",
                }
            ),
        ),
        deployment_wide=True,
        allowed="409",
    ),  # authorised, but the deployment has its root already
    Case("get organisation", READ, True, lambda api: ("GET", A, {})),
    Case("children", READ, True, lambda api: ("GET", "/v1/organizations/{east}/children", {})),
    Case(
        "change organisation",
        WRITE,
        True,
        lambda api: (
            "POST",
            A + "/changes",
            j({"employee_count": next(_serial), "effective_on": "2020-01-01"}),
        ),
    ),
    Case(
        "dissolve",
        WRITE,
        True,
        lambda api: (
            "POST",
            f"/v1/organizations/{dissolvable(api)}/dissolution",
            j({"dissolved_on": "2024-01-01"}),
        ),
    ),
    Case(
        "join",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/members",
            j(
                {
                    "id_number": api.next_person(),
                    "name": "蒋文",
                    "organization_code": api.tree.base_a,
                    "joined_on": "2021-01-01",
                }
            ),
        ),
    ),
    Case(
        "search",
        READ,
        True,
        lambda api: (
            "POST",
            "/v1/members/search",
            j(
                {
                    "id_number": api.get(f"/v1/members/{member(api)}", token="admin_pii").json()[
                        "id_number"
                    ]
                }
            ),
        ),
    ),
    Case("get member", READ, True, lambda api: ("GET", f"/v1/members/{member(api)}", {})),
    Case("history", READ, True, lambda api: ("GET", f"/v1/members/{member(api)}/history", {})),
    Case(
        "start transfer",
        WRITE,
        True,
        lambda api: (
            "POST",
            f"/v1/members/{member(api)}/transfers",
            j(
                {
                    "to_organization_code": api.tree.base_b,
                    "effective_on": "2021-01-01",
                    "reason_code": 1,
                }
            ),
        ),
    ),
    Case(
        "accept transfer",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/members/{}/transfers/{}/acceptance".format(*pending(api)),
            j({"effective_on": "2021-02-01"}),
        ),
    ),
    Case(
        "cancel transfer",
        WRITE,
        True,
        lambda api: ("POST", "/v1/members/{}/transfers/{}/cancellation".format(*pending(api)), {}),
    ),
    Case(
        "retain",
        WRITE,
        True,
        lambda api: (
            "POST",
            f"/v1/members/{member(api)}/retention",
            j({"effective_on": "2021-01-01", "reason_code": 2}),
        ),
    ),
    Case(
        "reinstate",
        WRITE,
        True,
        lambda api: (
            "POST",
            f"/v1/members/{retained(api)}/reinstatement",
            j({"effective_on": "2022-01-01"}),
        ),
    ),
    Case(
        "exit",
        WRITE,
        True,
        lambda api: (
            "POST",
            f"/v1/members/{member(api)}/exit",
            j({"effective_on": "2021-01-01", "change_code": 6, "reason_code": 5}),
        ),
    ),
    Case(
        "correct",
        WRITE,
        True,
        lambda api: ("POST", f"/v1/members/{member(api)}/corrections", j({"name": "蒋文华"})),
    ),
    Case("import", WRITE, True, lambda api: ("POST", "/v1/members/imports", roster(api))),
    Case("roll", READ, True, lambda api: ("GET", A + "/roll", {})),
    Case("roll summary", READ, True, lambda api: ("GET", A + "/roll/summary", {})),
    Case("roll changes", READ, True, lambda api: ("GET", A + "/roll/changes", {})),
    Case(
        "adopt policy",
        ADMIN,
        False,
        lambda api: (
            "POST",
            "/v1/levy-policies",
            j({"region_code": "1101", "effective_from": policy_day(), "shares": SHARES}),
        ),
        deployment_wide=True,
    ),
    Case(
        "policy in force",
        READ,
        False,
        lambda api: (
            "GET",
            "/v1/levy-policies",
            {"params": {"region_code": "110105", "on": "2024-01-01"}},
        ),
    ),
    Case(
        "dues",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/funds/dues",
            j(
                {
                    "organization_code": api.tree.base_a,
                    "period": "2024-05",
                    "amount": "10.00",
                    "received_on": "2024-05-01",
                }
            ),
        ),
    ),
    Case(
        "levy",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/funds/levies",
            j(
                {
                    "receiving_organization_code": api.tree.base_a,
                    "base_organization_code": api.tree.base_a,
                    "employer_code": api.tree.employer_a,
                    "period": "2024-05",
                    "payroll_total": "1000.00",
                    "amount": "20.00",
                    "channel": "employer",
                    "received_on": "2024-05-01",
                }
            ),
        ),
    ),
    Case(
        "remittance",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/funds/remittances",
            j(
                {
                    "from_organization_code": api.tree.base_a,
                    "to_organization_code": api.tree.east,
                    "kind": "upward",
                    "amount": "0.01",
                    "period": "2024-05",
                    "paid_on": "2024-05-03",
                }
            ),
        ),
    ),
    Case(
        "subsidy",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/funds/subsidies",
            j(
                {
                    "payer_organization_code": api.tree.base_a,
                    "recipient": {"member_id": member(api)},
                    "programme": "condolence",
                    "amount": "1.00",
                    "earmarked": False,
                    "approval_ref": "慰〔2024〕1号",
                    "paid_on": "2024-05-03",
                }
            ),
        ),
    ),
    Case(
        "expense",
        WRITE,
        True,
        lambda api: (
            "POST",
            "/v1/funds/expenses",
            j(
                {
                    "organization_code": api.tree.base_a,
                    "account_code": "501",
                    "amount": "1.00",
                    "earmarked": False,
                    "description": "慰问品",
                    "paid_on": "2024-05-03",
                }
            ),
        ),
    ),
    Case(
        "reversal",
        WRITE,
        True,
        lambda api: (
            "POST",
            f"/v1/funds/vouchers/{expense(api)}/reversal",
            j({"effective_on": "2024-05-04", "reason": "冲销"}),
        ),
    ),
    Case(
        "period close",
        WRITE,
        True,
        lambda api: ("POST", A + "/period-closes", j({"period": month(api)})),
    ),
    Case("periods", READ, True, lambda api: ("GET", A + "/periods", {})),
    Case("balance sheet", READ, True, lambda api: ("GET", A + "/statements/balance-sheet", {})),
    Case(
        "income-expenditure",
        READ,
        True,
        lambda api: ("GET", A + "/statements/income-expenditure", {}),
    ),
    Case("trial balance", READ, True, lambda api: ("GET", A + "/statements/trial-balance", {})),
    Case("journal", READ, True, lambda api: ("GET", A + "/journal", {})),
    Case(
        "audit events",
        AUDIT,
        True,
        lambda api: ("GET", "/v1/audit/events", {"params": {"organization_code": api.tree.base_a}}),
    ),
    Case("seal", ADMIN, False, lambda api: ("POST", "/v1/audit/seals", {}), deployment_wide=True),
    Case("seals", AUDIT, False, lambda api: ("GET", "/v1/audit/seals", {})),
    Case(
        "verification",
        AUDIT,
        False,
        lambda api: ("GET", "/v1/audit/verification", {}),
        deployment_wide=True,
    ),
]


@pytest.fixture(scope="module")
def funded(api: Api) -> Api:
    """base_a has money and owes its county, so payouts and remittances can succeed."""
    response = api.post(
        "/v1/funds/levies",
        {
            "receiving_organization_code": api.tree.base_a,
            "base_organization_code": api.tree.base_a,
            "employer_code": api.tree.employer_a,
            "period": "2024-04",
            "payroll_total": "1000000.00",
            "amount": "20000.00",
            "channel": "employer",
            "received_on": "2024-05-01",
        },
    )
    assert response.status_code == 201, response.text
    return api


def send(api: Api, case: Case, token: str | None) -> int:
    method, path, kwargs = case.make(api)
    path = path.format(a=api.tree.base_a, east=api.tree.east)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if method == "POST":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return api.client.request(method, path, headers=headers, **kwargs).status_code


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matrix(funded: Api, case: Case) -> None:
    api = funded
    got: dict[str, str] = {}
    for token in TOKENS:
        status = send(api, case, api.tokens[token])
        got[token] = "2xx" if 200 <= status < 300 else str(status)
    got["no token"] = str(send(api, case, None))
    got["unknown token"] = str(send(api, case, f"{uuid.uuid4().hex}.forged"))
    expected = {token: case.expected(token) for token in TOKENS}
    expected |= {"no token": "401", "unknown token": "401"}
    assert got == expected


def _base_under_west(api: Api) -> str:
    n = next(_serial)
    body = {
        "code": union_code(WEST_REGION, n, base=True),
        "name": "北京海龙电子有限公司工会",
        "level": "base",
        "parent_code": api.tree.west,
        "region_code": WEST_REGION,
        "founded_on": "2005-01-01",
        "employer_code": employer_code(WEST_REGION, n),
        "employee_count": 40,
    }
    assert api.post("/v1/organizations", body).status_code == 201
    return body["code"]


def _move_under_east(api: Api, code: str, effective_on: str) -> None:
    moved = api.post(
        f"/v1/organizations/{code}/changes",
        {"parent_code": api.tree.east, "effective_on": effective_on},
    )
    assert moved.status_code == 200, moved.text


def test_scope_is_decided_on_the_tree_as_it_stands_today(api: Api) -> None:
    """A move dated in the future neither widens the new parent's scope nor narrows the old
    one's; a move dated in the past does both."""
    later = _base_under_west(api)
    member_id = api.join(later)["member_id"]
    in_three_years = (datetime.date.today() + datetime.timedelta(days=3 * 366)).isoformat()
    _move_under_east(api, later, in_three_years)
    for path in (f"/v1/organizations/{later}", f"/v1/organizations/{later}/roll"):
        assert api.get(path, token="east_clerk").status_code == 403, path
        assert api.get(path, token="west_clerk").status_code == 200, path
    assert api.get(f"/v1/members/{member_id}", token="east_clerk").status_code == 404
    assert api.get(f"/v1/members/{member_id}", token="west_clerk").status_code == 200
    earlier = _base_under_west(api)
    _move_under_east(api, earlier, "2020-01-01")
    assert api.get(f"/v1/organizations/{earlier}/roll", token="east_clerk").status_code == 200
    assert api.get(f"/v1/organizations/{earlier}/roll", token="west_clerk").status_code == 403


def test_path_codes_are_checked_before_anything_is_looked_up(api: Api) -> None:
    """Codes that cannot be credit codes are 404 before any lookup, so requests full of long
    junk codes leave the server's caches as they were."""
    ledger = api.server.server.config.app.state.services.ledger
    unknown = union_code(EAST_REGION, 4999, base=True)  # a code's shape, but nobody's
    assert api.get(f"/v1/organizations/{unknown}").status_code == 404
    ids_before = stable_id.cache_info().currsize
    aggregates_before = len(ledger.repository.cache.cache)
    sent = 0
    run = uuid.uuid4().hex  # codes no earlier request of this process has sent
    for n in range(100):
        junk = f"{run}{n:06d}" + "Z" * 12_000
        for token in ("admin", "east_clerk"):
            for method, path in (
                ("GET", f"/v1/organizations/{junk}"),
                ("GET", f"/v1/organizations/{junk}/roll"),
                ("POST", f"/v1/organizations/{junk}/period-closes"),
            ):
                if method == "GET":
                    answer = api.get(path, token=token)
                else:
                    answer = api.post(path, {"period": "2024-01"}, token=token)
                assert answer.status_code == 404, (token, path[:60], answer.text[:200])
                assert len(answer.content) < 1_000
                sent += 1
    assert sent == 600
    assert stable_id.cache_info().currsize - ids_before < 10
    assert len(ledger.repository.cache.cache) - aggregates_before < 10
