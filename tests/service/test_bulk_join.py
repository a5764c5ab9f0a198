"""入会 of many people at once (the roster import's command), on SQLite and PostgreSQL.

Rows are decided in chunks of a thousand, one command each: every row is accepted or refused on
its own, a refused row leaves no trace, and a retry under the same key joins nobody twice.
"""

from __future__ import annotations

import pytest

import service.member_commands as member_commands
from service.application import Ledger
from service.idempotency import IdempotencyKey
from tests.service.scenario import Tree, found_tree, person


@pytest.fixture
def tree(ledger: Ledger) -> Tree:
    return found_tree(ledger)


def row(n: int, **changes: object) -> dict:
    return {"id_number": person(n), "name": f"会员{n}", "joined_on": "2024-01-02",
            "mobile": None, "migrant_worker": n % 2 == 0, "new_employment_form": False,
            **changes}


def test_rows_are_accepted_or_refused_each_on_its_own(
    ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_commands, "IMPORT_CHUNK_ROWS", 3)  # several chunks
    elsewhere = ledger.join_member(id_number=person(9), name="李四",
                                   organization_code=tree.base_b, joined_on="2024-01-02")
    rows = [
        (2, row(1)),
        (3, row(2, id_number="110101199001011230")),   # wrong check digit
        (4, row(3)),
        (5, row(1)),                                   # the same person again
        (6, row(9)),                                   # a member of another union
        (7, row(4, joined_on="1900-01-01")),           # before the union was founded
        (8, row(5)),
    ]
    outcomes = ledger.join_members(organization_code=tree.base_a, rows=rows,
                                   idempotency=IdempotencyKey.parse("t", "import-1"))
    assert [o["row"] for o in outcomes] == [2, 3, 4, 5, 6, 7, 8]
    accepted = {o["row"] for o in outcomes if "member_id" in o}
    assert accepted == {2, 4, 8}
    refused = {o["row"]: o for o in outcomes if "member_id" not in o}
    assert refused[3]["field"] == "id_number"
    assert refused[5]["field"] is None and "already a member" in refused[5]["reason"]
    assert refused[6]["field"] is None and tree.base_b in refused[6]["reason"]
    assert refused[7]["field"] is not None
    assert ledger.get_organization(tree.base_a)["member_count"] == 3
    assert ledger.get_member(elsewhere.body["member_id"])["organization_code"] == tree.base_b
    for outcome in outcomes:
        if "member_id" in outcome:
            assert ledger.get_member(outcome["member_id"])["organization_code"] == tree.base_a
            assert outcome["replayed"] is False and isinstance(outcome["position"], int)


def test_a_retry_under_the_same_key_joins_nobody_twice(ledger: Ledger, tree: Tree) -> None:
    rows = [(n + 2, row(n)) for n in range(1, 6)]
    key = IdempotencyKey.parse("t", "import-2")
    first = ledger.join_members(organization_code=tree.base_a, rows=rows, idempotency=key)
    head = ledger.head_position()
    again = ledger.join_members(organization_code=tree.base_a, rows=rows, idempotency=key)
    assert ledger.head_position() == head
    assert [o["member_id"] for o in again] == [o["member_id"] for o in first]
    assert all(o["replayed"] for o in again)
    assert ledger.get_organization(tree.base_a)["member_count"] == 5


def test_a_union_that_takes_no_members_refuses_every_row(ledger: Ledger, tree: Tree) -> None:
    head = ledger.head_position()
    outcomes = ledger.join_members(organization_code=tree.county, rows=[(2, row(1)),
                                                                        (3, row(2))])
    assert [o["field"] for o in outcomes] == ["organization_code", "organization_code"]
    assert ledger.head_position() == head
