"""JSON log lines, the request id and the access log, through real requests to a real server:
in-process (the log lines caught as the server writes them), and `ledger serve` as a real
process (its stderr)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.logs import JsonFormatter
from service.tokens import Tokens
from tests.api.conftest import Api
from tests.processes import eventually
from tests.reliability.harness import LedgerProcesses, ServerProcess

Lines = Callable[[], list[dict[str, Any]]]
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """The JSON lines every logger of this process writes from now on (the server runs in a
    thread of the test's process), as the server's own handler formats them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def access_line(lines: Lines, response: httpx.Response) -> dict[str, Any]:
    """The access line of this response, found by the request id it was sent back with.
    Written just after the response is sent: waited for."""
    rid = response.headers["x-request-id"]
    found: list[dict[str, Any]] = []

    def written() -> bool:
        found[:] = [
            line
            for line in lines()
            if line["logger"] == "ledger.access" and line["request_id"] == rid
        ]
        return bool(found)

    eventually(written, f"the access line of request {rid}")
    assert len(found) == 1, found
    return found[0]


def token_id(api: Api, name: str) -> str:
    principal = Tokens(api.backend.open()).verify(api.tokens[name])
    assert principal is not None
    return principal.token_id


def test_a_request_id_is_taken_from_the_request_and_sent_back(api: Api, log_lines: Lines) -> None:
    path = f"/v1/organizations/{api.tree.root}"
    response = api.client.get(
        path, headers={**api.headers("admin"), "X-Request-ID": "lb-7f3c:0001"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "lb-7f3c:0001"
    line = access_line(log_lines, response)
    assert line["method"] == "GET" and line["path"] == path and line["status"] == 200
    assert line["route"] == "/v1/organizations/{code}"
    assert line["level"] == "INFO" and line["message"] == f"GET {path} 200"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["token_id"] == token_id(api, "admin")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])


@pytest.mark.parametrize(
    "sent",
    [None, "", "has spaces", "x" * 129, 'quote"d', "café".encode()],
    ids=["none", "empty", "spaces", "too-long", "quote", "non-ascii"],
)
def test_a_missing_or_malformed_request_id_is_replaced(
    api: Api, log_lines: Lines, sent: str | bytes | None
) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = api.client.get("/healthz", headers=headers)
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    assert GENERATED.fullmatch(rid) and rid != sent
    assert access_line(log_lines, response)["token_id"] is None


def test_every_refused_request_has_an_access_line_without_personal_data(
    api: Api, log_lines: Lines
) -> None:
    person = api.next_person()
    body = {
        "id_number": person,
        "name": "柳如烟",
        "organization_code": api.tree.base_a,
        "joined_on": "2020-05-01",
        "mobile": "13987654321",
    }
    joined = api.post("/v1/members", body)  # the short way for joins (api/hot_posts.py)
    again = api.post("/v1/members", body)  # the same person: a rule says no
    answers = {
        201: joined,
        409: again,
        401: api.get(f"/v1/organizations/{api.tree.root}", token=None),
        403: api.post("/v1/organizations", {"code": "x"}, token="auditor"),
        404: api.get("/v1/organizations/999999999999999999"),
        422: api.post("/v1/members", {**body, "mobile": "12"}),
        400: api.post("/v1/members", body, key=None),
    }
    assert {status: r.status_code for status, r in answers.items()} == {s: s for s in answers}
    for status, response in answers.items():
        line = access_line(log_lines, response)
        assert line["status"] == status, line
        assert line["method"] == response.request.method
        assert line["path"] == response.request.url.path
    assert access_line(log_lines, joined)["route"] == "/v1/members"
    assert access_line(log_lines, joined)["token_id"] == token_id(api, "admin")
    assert access_line(log_lines, answers[403])["token_id"] == token_id(api, "auditor")
    assert access_line(log_lines, answers[401])["token_id"] is None
    # Neither the tokens nor the person (the 409's detail names the identity number) is logged.
    text = json.dumps(log_lines(), ensure_ascii=False)
    for secret in (*api.tokens.values(), person, "柳如烟", "13987654321"):
        assert secret not in text


def test_ledger_serve_writes_one_json_object_per_line(tmp_path: Path) -> None:
    processes = LedgerProcesses(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path)
    token = processes.token()
    with ServerProcess(processes, workers=2) as server:
        server.start()
        response = httpx.get(
            server.url + "/v1/organizations/nothing",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "from-the-client"},
            timeout=60,
        )
        assert response.status_code == 404
        assert response.headers["x-request-id"] == "from-the-client"
        log = tmp_path / "server.log"

        def lines() -> list[dict[str, Any]]:
            return [json.loads(line) for line in log.read_text().splitlines() if line]

        eventually(
            lambda: any(line["request_id"] == "from-the-client" for line in lines()),
            "the access line in the server's log",
        )
        server.stop()
    every = lines()  # each line parses as JSON, or this fails
    assert {"time", "level", "logger", "message", "request_id"} <= set(every[0])
    ours = [line for line in every if line["request_id"] == "from-the-client"]
    assert [(x["logger"], x["status"]) for x in ours] == [("ledger.access", 404)]
    loggers = {line["logger"] for line in every}
    assert {"ledger.server", "uvicorn.error", "ledger.access"} <= loggers, loggers
    assert token not in log.read_text()
