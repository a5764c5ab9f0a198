"""What the console's tests walk through: a county that received two levies in 2025, one of
them reversed after a moment the tests remember, a member with known personal data, and a
seal over all of it. Built through the real API."""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass

import httpx

from tests.api.conftest import Api

MEMBER_NAME = "欧阳娜娜"
MEMBER_MOBILE = "13912345678"


@dataclass
class Walk:
    county: str
    county_name: str
    kept_voucher: str
    reversed_voucher: str
    before_reversal: str  # RFC 3339: known_at between the levies and the reversal
    amount_before: str  # the county's 402 in 2025 as known then ("2,400.00")
    amount_now: str
    member_id_number: str
    member_birth: str
    seal_position: int


def levy(api: Api, amount: str, payroll: str, period: str, received_on: str) -> str:
    body = {
        "receiving_organization_code": api.tree.east,
        "base_organization_code": api.tree.base_a,
        "employer_code": api.tree.employer_a,
        "period": period,
        "payroll_total": payroll,
        "amount": amount,
        "channel": "tax",
        "received_on": received_on,
    }
    response = api.post("/v1/funds/levies", body, token="east_clerk")
    assert response.status_code == 201, response.text
    return str(response.json()["voucher_id"])


def build_walk(api: Api) -> Walk:
    # The county keeps 20% (its share and the missing township's): 2,000.00 of levy gives
    # 400.00 on 402, 10,000.00 gives 2,000.00.
    kept = levy(api, "2000.00", "100000.00", "2025-02", "2025-03-10")
    wrong = levy(api, "10000.00", "500000.00", "2025-03", "2025-04-10")
    # known_at is taken to the second (as the browser's picker sends it): the next whole
    # second after both levies, and the reversal after it.
    now = datetime.datetime.now(datetime.UTC)
    before = (now + datetime.timedelta(seconds=1)).replace(microsecond=0)
    time.sleep((before - now).total_seconds() + 0.1)
    reversal = api.post(
        f"/v1/funds/vouchers/{wrong}/reversal",
        {"effective_on": "2025-04-30", "reason": "重复录入"},
        token="east_clerk",
    )
    assert reversal.status_code == 201, reversal.text
    member = api.join(api.tree.base_a, name=MEMBER_NAME, mobile=MEMBER_MOBILE)
    sealed = api.post("/v1/audit/seals", None)
    assert sealed.status_code == 201, sealed.text
    id_number = api.get(f"/v1/members/{member['member_id']}", token="admin_pii").json()["id_number"]
    birth = f"{id_number[6:10]}-{id_number[10:12]}-{id_number[12:14]}"
    return Walk(
        county=api.tree.east,
        county_name="朝阳区总工会",
        kept_voucher=kept,
        reversed_voucher=wrong,
        before_reversal=before.isoformat(),
        amount_before="2,400.00",
        amount_now="400.00",
        member_id_number=id_number,
        member_birth=birth,
        seal_position=int(sealed.json()["position"]),
    )


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def signed_in(api: Api, token_name: str) -> httpx.Client:
    """A browser-like client of the console, signed in with one of the test tokens."""
    client = httpx.Client(base_url=api.server.url, timeout=120)
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    response = client.post(
        "/console/sign-in",
        data={"token": api.tokens[token_name], "csrf": csrf_of(form.text), "next": "/console"},
    )
    assert response.status_code == 303, response.text
    return client
