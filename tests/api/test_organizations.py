"""Organisations through real HTTP: every endpoint's success and documented errors."""

from __future__ import annotations

from scripts.synthetic import employer_code, union_code
from tests.api.conftest import EAST_REGION, Api

PROBLEM = "application/problem+json"


def new_base(api: Api, serial: int, **extra) -> dict:
    body = {
        "code": union_code(EAST_REGION, serial, base=True),
        "name": "北京华夏建设集团工会",
        "level": "base",
        "parent_code": api.tree.east,
        "region_code": EAST_REGION,
        "founded_on": "2010-06-01",
        "employer_code": employer_code(EAST_REGION, serial),
        "employee_count": 80,
        **extra,
    }
    return body


def test_found_read_and_list(api: Api) -> None:
    body = new_base(api, 101)
    response = api.post("/v1/organizations", body, token="east_clerk")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["code"] == body["code"] and created["status"] == "active"
    assert created["member_count"] == 0 and isinstance(created["position"], int)
    read = api.get(f"/v1/organizations/{body['code']}").json()
    assert read["name"] == "北京华夏建设集团工会" and read["parent_code"] == api.tree.east
    children = api.get(
        f"/v1/organizations/{api.tree.east}/children", params={"page_size": 1000}
    ).json()
    assert body["code"] in [c["code"] for c in children["items"]]
    assert children["total"] == len(children["items"]) and children["page"] == 1


def test_change_and_dissolve(api: Api) -> None:
    body = new_base(api, 102)
    assert api.post("/v1/organizations", body).status_code == 201
    code = body["code"]
    changed = api.post(
        f"/v1/organizations/{code}/changes",
        {"name": "北京华夏建设股份公司工会", "employee_count": 95, "effective_on": "2015-01-01"},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "北京华夏建设股份公司工会"
    assert changed.json()["employee_count"] == 95
    member = api.join(code)
    refused = api.post(f"/v1/organizations/{code}/dissolution", {"dissolved_on": "2024-01-01"})
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    api.post(
        f"/v1/members/{member['member_id']}/exit",
        {"effective_on": "2023-01-01", "change_code": 6, "reason_code": 5},
    )
    dissolved = api.post(f"/v1/organizations/{code}/dissolution", {"dissolved_on": "2024-01-01"})
    assert dissolved.status_code == 200, dissolved.text
    assert dissolved.json()["status"] == "dissolved"
    assert api.get(f"/v1/organizations/{code}").json()["status"] == "dissolved"


def test_invalid_values_are_422_with_fields(api: Api) -> None:
    bad = new_base(api, 103, code="811101050000000011")  # wrong check character
    response = api.post("/v1/organizations", bad)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == PROBLEM
    assert problem["status"] == 422 and problem["type"] and problem["title"] and problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["code"]
    response = api.post("/v1/organizations", new_base(api, 104, level="village"))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "level"
    response = api.post("/v1/organizations", new_base(api, 105, founded_on="2023-02-30"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "founded_on"
    response = api.post(
        "/v1/organizations",
        new_base(api, 106, parent_code=union_code(EAST_REGION, 999, base=False)),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "parent_code"


def test_not_found_and_conflicts(api: Api) -> None:
    unknown = union_code(EAST_REGION, 998, base=True)
    assert api.get(f"/v1/organizations/{unknown}").status_code == 404
    assert api.get(f"/v1/organizations/{unknown}/children").status_code == 404
    assert (
        api.post(
            f"/v1/organizations/{unknown}/changes", {"effective_on": "2020-01-01", "name": "某工会"}
        ).status_code
        == 404
    )
    assert (
        api.post(
            f"/v1/organizations/{unknown}/dissolution", {"dissolved_on": "2020-01-01"}
        ).status_code
        == 404
    )
    existing = new_base(api, 107)
    assert api.post("/v1/organizations", existing).status_code == 201
    assert api.post("/v1/organizations", existing).status_code == 409
    second_root = {
        "code": union_code("120000", 1, base=False),
        "name": "天津市总工会",
        "level": "province",
        "parent_code": None,
        "region_code": "120000",
        "founded_on": "2000-01-01",
    }
    assert api.post("/v1/organizations", second_root).status_code == 409


def test_idempotency_key(api: Api) -> None:
    body = new_base(api, 108)
    first = api.post("/v1/organizations", body, key="found-108")
    again = api.post("/v1/organizations", body, key="found-108")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = api.post("/v1/organizations", new_base(api, 109), key="found-108")
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    missing = api.post("/v1/organizations", new_base(api, 109), key=None)
    assert missing.status_code == 400 and missing.headers["content-type"] == PROBLEM
    bad_key = api.post("/v1/organizations", new_base(api, 109), key="has space")
    assert bad_key.status_code == 422
    # The key is scoped to the token's organisation: another scope may reuse it.
    elsewhere = api.post(
        "/v1/organizations", new_base(api, 109), key="found-108", token="east_clerk"
    )
    assert elsewhere.status_code == 201, elsewhere.text


def test_authentication_and_roles(api: Api) -> None:
    body = new_base(api, 110)
    assert api.post("/v1/organizations", body, token=None).status_code == 401
    assert api.post("/v1/organizations", body, token="not-a-token").status_code == 401
    response = api.get(f"/v1/organizations/{api.tree.root}", token=None)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert api.post("/v1/organizations", body, token="auditor").status_code == 403
    assert api.post("/v1/organizations", body, token="west_clerk").status_code == 403
    root = {
        "code": union_code("120000", 2, base=False),
        "name": "天津市总工会",
        "level": "province",
        "parent_code": None,
        "region_code": "120000",
        "founded_on": "2000-01-01",
    }
    assert api.post("/v1/organizations", root, token="clerk").status_code == 403
    assert api.post("/v1/organizations", root, token="east_admin").status_code == 403


def test_children_and_lookup_come_from_the_read_models_as_the_write_side_has_them(
    api: Api,
) -> None:
    """One query per page: each child as the write side has it (member and employee counts,
    today's parent), and the lookup within the token's scope by part of a name or a code."""
    children = api.get(f"/v1/organizations/{api.tree.east}/children").json()["items"]
    assert children
    for child in children:
        assert child == {
            k: v
            for k, v in api.get(f"/v1/organizations/{child['code']}").json().items()
            if k in child
        }
    everything = api.get("/v1/organizations", params={"page_size": 1000}).json()
    assert {api.tree.root, api.tree.east, api.tree.base_w} <= {
        o["code"] for o in everything["items"]
    }
    east_only = api.get("/v1/organizations", token="east_clerk", params={"page_size": 1000}).json()
    codes = {o["code"] for o in east_only["items"]}
    assert api.tree.east in codes and api.tree.base_a in codes
    assert api.tree.west not in codes and api.tree.base_w not in codes
    by_name = api.get("/v1/organizations", params={"q": "顺达物流"}).json()
    assert [o["code"] for o in by_name["items"]] == [api.tree.base_b]
    by_code = api.get("/v1/organizations", params={"q": api.tree.base_w[-8:].lower()}).json()
    assert [o["code"] for o in by_code["items"]] == [api.tree.base_w]
    literal = api.get("/v1/organizations", params={"q": "%"}).json()
    assert literal["total"] == 0  # LIKE's wildcards are taken literally
    counties = api.get("/v1/organizations", params={"level": "county"}).json()
    assert {o["code"] for o in counties["items"]} == {api.tree.east, api.tree.west}
    assert api.get("/v1/organizations", params={"level": "galaxy"}).status_code == 422


def test_a_move_dated_in_the_future_changes_no_child_list_today(api: Api) -> None:
    body = new_base(api, 103)
    assert api.post("/v1/organizations", body).status_code == 201
    moved = api.post(
        f"/v1/organizations/{body['code']}/changes",
        {"parent_code": api.tree.west, "effective_on": "2099-01-01"},
    )
    assert moved.status_code == 200, moved.text

    def child_codes(parent: str) -> set[str]:
        page = api.get(f"/v1/organizations/{parent}/children", params={"page_size": 1000})
        return {o["code"] for o in page.json()["items"]}

    assert body["code"] in child_codes(api.tree.east)
    assert body["code"] not in child_codes(api.tree.west)


def test_lookup_refuses_control_characters_and_malformed_codes(api: Api) -> None:
    # PostgreSQL text cannot hold NUL: a q with one used to reach the query and answer 500.
    for params in ({"q": "\x00ab"}, {"q": "a\x1fb"}, {"parent_code": "\x00"}):
        response = api.get("/v1/organizations", params=params)
        assert response.status_code == 422, (params, response.text)
    bad_code = api.get("/v1/audit/events", token="auditor", params={"organization_code": "\x00"})
    assert bad_code.status_code == 422, bad_code.text
    assert api.get("/v1/organizations", params={"q": "东"}).status_code == 200
