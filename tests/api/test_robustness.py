"""Nothing a client sends is a 500: malformed bodies, wrong types, oversized requests."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def raw_post(api: Api, path: str, content: bytes, content_type: str = "application/json"):
    return api.client.post(
        path,
        content=content,
        headers={**api.headers("admin", uuid.uuid4().hex), "Content-Type": content_type},
    )


def join_body(api: Api, **extra) -> dict:
    return {
        "id_number": api.next_person(),
        "name": "陈静",
        "organization_code": api.tree.base_a,
        "joined_on": "2020-01-01",
        **extra,
    }


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"not json",
        b'{"a": }',
        b"\xff\xfe\x00garbage",
        b'{"name": "\xc3\x28"}',
        b"[]",
        b"null",
        b'"text"',
        b"1e999999",
    ],
)
def test_malformed_bodies(api: Api, content: bytes) -> None:
    response = raw_post(api, "/v1/members", content)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == PROBLEM


def test_missing_body_is_400(api: Api) -> None:
    response = raw_post(api, "/v1/members", b"")
    assert response.status_code == 400


def test_unknown_fields_and_wrong_types(api: Api) -> None:
    response = api.post("/v1/members", join_body(api, shoe_size=42))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "shoe_size"
    for field, value in (
        ("migrant_worker", "yes"),
        ("name", 123),
        ("joined_on", 20200101),
        ("organization_code", None),
        ("mobile", ["13812345678"]),
    ):
        response = api.post("/v1/members", join_body(api, **{field: value}))
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"][0]["field"].startswith(field)
    response = api.post(
        "/v1/organizations/" + api.tree.base_a + "/changes",
        {"employee_count": 10**400, "effective_on": "2020-01-01"},
    )
    assert response.status_code in (400, 422)
    response = api.post(
        "/v1/organizations/" + api.tree.base_a + "/changes",
        {"employee_count": 1.5, "effective_on": "2020-01-01"},
    )
    assert response.status_code == 422


def test_impossible_dates(api: Api) -> None:
    for day in ("2021-02-29", "2020-13-01", "0000-01-01", "9999-12-31", "2020-1-1", ""):
        response = api.post("/v1/members", join_body(api, joined_on=day))
        assert response.status_code == 422, day
        assert response.json()["errors"][0]["field"] == "joined_on"


def test_sql_looking_and_odd_strings(api: Api) -> None:
    for name in ("'; DROP TABLE stored_events; --", "Robert'); DELETE FROM x;--", "欧阳·娜娜"):
        response = api.post("/v1/members", join_body(api, name=name))
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name[0] + "*" * (len(name) - 1)  # masked
        stored = api.get(f"/v1/members/{response.json()['member_id']}", token="admin_pii")
        assert stored.json()["name"] == name
    for path in (
        "/v1/organizations/' OR 1=1 --",
        "/v1/members/1;DROP TABLE x",
        "/v1/organizations/%00",
        "/v1/organizations/%ED%A0%80",
    ):
        assert api.get(path).status_code == 404, path
    response = raw_post(api, "/v1/members", json.dumps(join_body(api, name="\ud800")).encode())
    assert response.status_code == 422
    response = api.post("/v1/members", join_body(api, name="a\x00b"))
    assert response.status_code == 422
    response = api.post("/v1/members/search", {"id_number": "' OR '1'='1' --   "})
    assert response.status_code == 422


def test_oversized_bodies_are_refused(api: Api) -> None:
    big = json.dumps(join_body(api, name="x" * (2 * 1024 * 1024))).encode()
    response = raw_post(api, "/v1/members", big)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM

    def chunks():
        yield b'{"name": "'
        for _ in range(2048):
            yield b"y" * 1024
        yield b'"}'

    response = api.client.post(
        "/v1/members",
        content=chunks(),
        headers={**api.headers("admin", uuid.uuid4().hex), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_lying_content_length_is_refused(api: Api) -> None:
    """A declared length far beyond the cap is refused before the body is read."""
    host, port = "127.0.0.1", api.server.port
    request = (
        f"POST /v1/members HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {api.tokens['admin']}\r\nIdempotency-Key: k1\r\n"
        "Content-Type: application/json\r\nContent-Length: 500000000\r\n\r\n{"
    ).encode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        reply = sock.recv(4096).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413")


def test_unknown_routes_and_methods(api: Api) -> None:
    assert api.get("/v1/nothing-here").status_code == 404
    response = api.client.delete(f"/v1/organizations/{api.tree.root}", headers=api.headers("admin"))
    assert response.status_code == 405 and response.headers["content-type"] == PROBLEM
    response = raw_post(api, "/v1/members", b"id_number=1", "application/x-www-form-urlencoded")
    assert response.status_code in (400, 415, 422)


def test_odd_query_strings_and_headers(api: Api) -> None:
    code = api.tree.base_a
    for query in (
        "as_of=%FF%FE",
        "as_of=2024-02-30",
        "page=0",
        "page=abc",
        "page_size=99999",
        "scope=everything",
        "known_at=2024-01-01",
        "known_at=%00",
        "status=gone",
    ):
        response = api.client.get(
            f"/v1/organizations/{code}/roll?{query}", headers=api.headers("admin")
        )
        assert response.status_code == 422, (query, response.text)
    response = api.client.post(
        "/v1/members",
        json=join_body(api),
        headers={**api.headers("admin"), "Idempotency-Key": "ключ".encode()},
    )
    assert response.status_code == 422
    response = api.client.get(
        f"/v1/organizations/{code}", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert response.status_code == 401
