"""入会 of many people at once (the roster import's command), on SQLite and PostgreSQL.

Rows are decided in chunks of a thousand, one command each: every row is accepted or refused on
its own, a refused row leaves no trace, and a retry under the same key joins nobody twice.
"""

from __future__ import annotations

import datetime

import pytest

import service.imports as member_commands
from domain.errors import DomainError
from service.application import Ledger
from service.commands import (
    AcceptTransfer,
    DissolveOrganization,
    ExitMember,
    JoinMember,
    StartTransfer,
)
from service.idempotency import IdempotencyKey
from service.imports import join_rows
from tests.service.scenario import Tree, found_tree, person


@pytest.fixture
def tree(ledger: Ledger) -> Tree:
    return found_tree(ledger)


def row(n: int, **changes: object) -> dict:
    return {
        "id_number": person(n),
        "name": f"会员{n}",
        "joined_on": "2024-01-02",
        "mobile": None,
        "migrant_worker": n % 2 == 0,
        "new_employment_form": False,
        **changes,
    }


def test_rows_are_accepted_or_refused_each_on_its_own(
    ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_commands, "IMPORT_CHUNK_ROWS", 3)  # several chunks
    elsewhere = ledger.execute(
        JoinMember(
            id_number=person(9), name="李四", organization_code=tree.base_b, joined_on="2024-01-02"
        )
    )
    rows = [
        (2, row(1)),
        (3, row(2, id_number="110101199001011230")),  # wrong check digit
        (4, row(3)),
        (5, row(1)),  # the same person again
        (6, row(9)),  # a member of another union
        (7, row(4, joined_on="1900-01-01")),  # before the union was founded
        (8, row(5)),
    ]
    outcomes = join_rows(
        ledger,
        organization_code=tree.base_a,
        rows=rows,
        idempotency=IdempotencyKey.parse("t", "import-1"),
    )
    assert [o["row"] for o in outcomes] == [2, 3, 4, 5, 6, 7, 8]
    accepted = {o["row"] for o in outcomes if "member_id" in o}
    assert accepted == {2, 4, 8}
    refused = {o["row"]: o for o in outcomes if "member_id" not in o}
    assert refused[3]["field"] == "id_number"
    assert refused[5]["field"] is None and "already a member" in refused[5]["reason"]
    # Who belongs to which union is personal: the reason does not name the other union.
    assert refused[6]["field"] is None and "already a member" in refused[6]["reason"]
    assert tree.base_b not in refused[6]["reason"]
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
    first = join_rows(ledger, organization_code=tree.base_a, rows=rows, idempotency=key)
    head = ledger.head_position()
    again = join_rows(ledger, organization_code=tree.base_a, rows=rows, idempotency=key)
    assert ledger.head_position() == head
    assert [o["member_id"] for o in again] == [o["member_id"] for o in first]
    assert all(o["replayed"] for o in again)
    assert ledger.get_organization(tree.base_a)["member_count"] == 5


def test_a_union_that_takes_no_members_refuses_every_row(ledger: Ledger, tree: Tree) -> None:
    head = ledger.head_position()
    outcomes = join_rows(ledger, organization_code=tree.county, rows=[(2, row(1)), (3, row(2))])
    assert [o["field"] for o in outcomes] == ["organization_code", "organization_code"]
    assert ledger.head_position() == head


def _topics(ledger: Ledger, after: int) -> list[str]:
    head = ledger.head_position()
    return [
        n.topic
        for n in ledger.recorder.select_notifications(
            start=after + 1, limit=head - after, stop=head
        )
    ]


def test_a_chunk_admits_its_members_in_one_union_event_that_replays_from_the_store(
    backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(member_commands, "IMPORT_CHUNK_ROWS", 4)
    single = ledger.execute(
        JoinMember(
            id_number=person(50), name="王五", organization_code=tree.base_a, joined_on="2024-01-02"
        )
    )
    head = ledger.head_position()
    rows = [(n + 2, row(n)) for n in range(1, 11)] + [(13, row(3))]  # row 13: a duplicate
    outcomes = join_rows(
        ledger,
        organization_code=tree.base_a,
        rows=rows,
        idempotency=IdempotencyKey.parse("t", "import-3"),
    )
    assert sum("member_id" in o for o in outcomes) == 10
    topics = _topics(ledger, head)
    # Chunks of 4, 4, 3 rows: one MembersAdmitted each, no MemberAdmitted per person.
    assert topics.count("ledger:Organisation.MembersAdmitted") == 3
    assert "ledger:Organisation.MemberAdmitted" not in topics
    assert topics.count("ledger:Member.Joined") == 10
    # A fresh process reads the union back from the stored events (old and new kinds).
    reopened = backend.open()
    try:
        assert reopened.get_organization(tree.base_a)["member_count"] == 11
    finally:
        reopened.close()
    # The count keeps every rule: no dissolution with members, transfers and exits count.
    with pytest.raises(DomainError):
        ledger.execute(DissolveOrganization(code=tree.base_a, dissolved_on="2024-02-01"))
    moved = outcomes[0]["member_id"]
    transfer = ledger.execute(
        StartTransfer(
            member_id=moved,
            to_organization_code=tree.base_b,
            effective_on="2024-02-01",
            reason_code=1,
        )
    )
    ledger.execute(
        AcceptTransfer(
            member_id=moved, transfer_id=transfer.body["transfer_id"], effective_on="2024-02-01"
        )
    )
    for outcome in outcomes[1:]:
        if "member_id" in outcome:
            ledger.execute(
                ExitMember(
                    member_id=outcome["member_id"],
                    effective_on="2024-02-01",
                    change_code=6,
                    reason_code=5,
                )
            )
    assert ledger.get_organization(tree.base_a)["member_count"] == 1
    ledger.execute(
        ExitMember(
            member_id=single.body["member_id"],
            effective_on="2024-02-01",
            change_code=6,
            reason_code=5,
        )
    )
    ledger.execute(DissolveOrganization(code=tree.base_a, dissolved_on="2024-02-02"))
    assert ledger.get_organization(tree.base_b)["member_count"] == 1
    # People who left join again through an import: rejoins are admitted in the chunk's event.
    head = ledger.head_position()
    again = join_rows(
        ledger,
        organization_code=tree.base_b,
        rows=[(2, row(2, joined_on="2024-03-01")), (3, row(3, joined_on="2024-03-01"))],
    )
    assert all("member_id" in o for o in again)
    assert _topics(ledger, head).count("ledger:Organisation.MembersAdmitted") == 1
    assert ledger.get_organization(tree.base_b)["member_count"] == 3


def test_a_refused_rejoin_in_a_chunk_leaves_no_event(ledger: Ledger, tree: Tree) -> None:
    first = join_rows(ledger, organization_code=tree.base_a, rows=[(2, row(1))])
    ledger.execute(
        ExitMember(
            member_id=first[0]["member_id"], effective_on="2024-02-01", change_code=6, reason_code=5
        )
    )
    head = ledger.head_position()
    outcomes = join_rows(
        ledger, organization_code=tree.base_b, rows=[(2, row(1, joined_on="2024-01-15"))]
    )  # before exit
    assert outcomes[0]["field"] == "joined_on"
    assert ledger.head_position() == head


def test_the_roll_shows_every_imported_member_after_catch_up(
    ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.read_models.models import ReadModels

    monkeypatch.setattr(member_commands, "IMPORT_CHUNK_ROWS", 3)
    outcomes = join_rows(
        ledger,
        organization_code=tree.base_a,
        rows=[(n + 2, row(n)) for n in range(1, 11)],
        idempotency=IdempotencyKey.parse("t", "import-4"),
    )
    models = ReadModels(ledger)
    try:
        models.catch_up()
        roll = models.roll(
            tree.base_a,
            as_of=datetime.date(2024, 6, 1),
            known_at=None,
            scope="self",
            page_size=1000,
        )
    finally:
        models.close()
    assert {item["member_id"]: item["status"] for item in roll["items"]} == {
        o["member_id"]: "active" for o in outcomes
    }
