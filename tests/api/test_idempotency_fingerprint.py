"""Idempotency records kept before request fingerprints were keyed (a plain SHA-256 of the
request) are still honoured over HTTP: the same request replays, another is a 422. Both the
commands' own records (a join) and the HTTP layer's (a roster import) are checked."""

from __future__ import annotations

import hashlib
from uuid import UUID

from domain.idempotency import IdempotencyRecord
from service.commands import JoinMember
from service.idempotency import IdempotencyKey, plain_fingerprint
from tests.api.conftest import Api
from tests.api.test_imports import HEADER_EN, upload


def _old_record(
    api: Api, key: IdempotencyKey, command: str, request: dict, result: dict, event_keys: list[str]
) -> None:
    ledger = api.backend.open()
    ledger.save(
        IdempotencyRecord(
            id=key.record_id,
            command=command,
            fingerprint=plain_fingerprint(command, request),
            result=result,
            event_keys=event_keys,
        )
    )


def test_an_old_join_record_replays_masked_and_refuses_another_body(api: Api) -> None:
    body = {
        "id_number": api.next_person(),
        "name": "欧阳翀翊",
        "organization_code": api.tree.base_a,
        "joined_on": "2021-03-01",
        "mobile": "15938472615",
        "migrant_worker": False,
        "new_employment_form": False,
    }
    first = api.backend.open().execute(JoinMember(**body))
    key = IdempotencyKey(api.tree.east, "old-join")
    _old_record(
        api, key, "join_member", body, first.body, [f"{UUID(first.body['member_id']).hex}:1"]
    )

    replay = api.post("/v1/members", body, token="east_clerk", key="old-join")
    assert replay.status_code == 201, replay.text
    assert replay.headers.get("Idempotent-Replayed") == "true"
    shown = replay.json()
    assert shown["member_id"] == first.body["member_id"]
    assert shown["name"] == "欧***" and shown["birth_date"] is None
    assert body["id_number"] not in replay.text and body["mobile"] not in replay.text

    other = api.post(
        "/v1/members", body | {"mobile": "15938472616"}, token="east_clerk", key="old-join"
    )
    assert other.status_code == 422, other.text


def test_an_old_import_record_replays_and_refuses_another_file(api: Api) -> None:
    content = f"{HEADER_EN}\r\n{api.next_person()},蒯舫,2021-01-05,,否,否\r\n".encode()
    request = {
        "organization_code": api.tree.base_b,
        "file_sha256": hashlib.sha256(content).hexdigest(),
    }
    report = {
        "organization_code": api.tree.base_b,
        "rows_total": 1,
        "rows_accepted": 0,
        "rows_rejected": 1,
        "accepted": [],
        "rejected": [{"row": 2, "field": None, "reason": "录入有误 13726481937"}],
        "position": None,
    }
    key = IdempotencyKey(api.tree.east, "old-import")
    _old_record(api, key, "import_members", request, report, [])

    replay = upload(api, content, "roster.csv", key="old-import")
    assert replay.status_code == 200, replay.text
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["rejected"] == [
        {"row": 2, "field": None, "reason": "录入有误 137****1937"}
    ]

    other = upload(api, content + b"\r\n", "roster.csv", key="old-import")
    assert other.status_code == 422, other.text
