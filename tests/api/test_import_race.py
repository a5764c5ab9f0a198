"""A roster import racing HTTP joins of the same people, through a real server on each store:
every person ends with exactly one membership, taken by whichever write came first.

The import is cut into many small transactions (bulk writes, service/bulk_join.py) so that the
joins arrive between them as well as during them; both go through the one writer of the
process and its writer lock."""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

import httpx
import pytest

import service.imports as imports
from tests.api.conftest import Api

HEADER = "id_number,name,joined_on,mobile,migrant_worker,new_employment_form"
PEOPLE = 60


def test_an_import_racing_joins_of_the_same_people_gives_each_one_membership(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", 4)
    monkeypatch.setattr(imports, "CHUNKS_PER_WRITE", 2)
    people = [api.next_person() for _ in range(PEOPLE)]
    content = "\r\n".join(
        [HEADER, *(f"{p},导入{i},2020-05-01,,否,否" for i, p in enumerate(people))]
    ).encode("utf-8")
    tree, headers = api.tree, api.headers("admin")
    ledger = api.backend.open()
    counts = {c: ledger.get_organization(c)["member_count"] for c in (tree.base_a, tree.base_b)}
    report: dict[str, Any] = {}
    joins: dict[str, list[int]] = {p: [] for p in people}
    start = threading.Barrier(4)

    def import_roster() -> None:
        with httpx.Client(base_url=api.server.url, timeout=120) as client:
            start.wait()
            response = client.post(
                "/v1/members/imports",
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                data={"organization_code": tree.base_a},
                files={"file": ("roster.csv", content, "text/csv")},
            )
            assert response.status_code == 200, response.text
            report.update(response.json())

    def join(order: list[str]) -> None:
        with httpx.Client(base_url=api.server.url, timeout=120) as client:
            start.wait()
            for p in order:
                body = {
                    "id_number": p,
                    "name": "王芳",
                    "organization_code": tree.base_b,
                    "joined_on": "2020-05-01",
                }
                response = client.post(
                    "/v1/members",
                    json=body,
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                )
                joins[p].append(response.status_code)  # one list per person: thread-safe

    rng = random.Random(23)
    orders = [rng.sample(people, len(people)) for _ in range(3)]
    threads = [threading.Thread(target=import_roster)] + [
        threading.Thread(target=join, args=(order,)) for order in orders
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    by_import = {people[r["row"] - 2] for r in report["accepted"]}
    by_http = {p for p, statuses in joins.items() if 201 in statuses}
    # Each person joined once: by the import or over HTTP (by one request), never both,
    # never neither; every other attempt was refused as a member already.
    assert by_import.isdisjoint(by_http)
    assert by_import | by_http == set(people)
    assert all(sorted(s) == [201, 409, 409] for p, s in joins.items() if p in by_http)
    assert all(s == [409, 409, 409] for p, s in joins.items() if p in by_import)
    assert {r["reason"] for r in report["rejected"]} <= {
        "this person is already a member of a union"
    }
    assert report["rows_accepted"] + report["rows_rejected"] == PEOPLE
    after = {c: ledger.get_organization(c)["member_count"] for c in (tree.base_a, tree.base_b)}
    assert after[tree.base_a] - counts[tree.base_a] == len(by_import)
    assert after[tree.base_b] - counts[tree.base_b] == len(by_http)
    for p in people:
        member = ledger.find_member(p)
        assert member["organization_code"] == (tree.base_a if p in by_import else tree.base_b)
        # One stored event per person: the one Joined, whichever path wrote it.
        events = ledger.recorder.select_events(ledger.member_id_for(p))
        assert [e.topic for e in events] == ["ledger:Member.Joined"]
