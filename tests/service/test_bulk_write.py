"""The roster import's bulk write path (service/bulk_join.py) against the command path, on both
stores: the same answers and, decoded, the same events; a re-run adds nothing; the audit chain
verifies over what it wrote."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import service.imports as imports
from domain.errors import DomainError
from projections.audit.trail import AuditTrail
from service.application import Ledger
from service.bulk_join import chunk_key, joined_event
from service.commands import ExitMember, JoinMember, JoinMembers
from service.idempotency import IdempotencyKey
from service.imports import join_rows
from tests.conftest import BACKENDS, Backend
from tests.service.scenario import Tree, found_tree, org_code, person

# Fields the two paths cannot share: when an event was made.
UNSHARED = {"timestamp"}


def _decoded(ledger: Ledger, after: int) -> list[tuple[Any, ...]]:
    """Every event stored after a position, decoded by the ledger's mapper: (stream, version,
    topic, state without its timestamp), in (stream, version) order."""
    notifications = ledger.recorder.select_notifications(start=after + 1, limit=100_000)
    decoded = []
    for n in notifications:
        event = ledger.mapper.to_domain_event(n)
        state = {k: v for k, v in vars(event).items() if k not in UNSHARED}
        decoded.append((n.originator_id, n.originator_version, n.topic, state))
    return sorted(decoded, key=lambda d: (str(d[0]), d[1]))


def _command_path(
    ledger: Ledger, code: str, rows: list[tuple[int, dict]], key: IdempotencyKey
) -> list[dict[str, Any]]:
    """The rows as the import sent them before the bulk path: one JoinMembers per chunk."""
    outcomes: list[dict[str, Any]] = []
    for start in range(0, len(rows), imports.IMPORT_CHUNK_ROWS):
        chunk = rows[start : start + imports.IMPORT_CHUNK_ROWS]
        command = JoinMembers.prepare(ledger.member_ids, code, chunk)
        result = ledger.execute(command, actor="cli:import", idempotency=chunk_key(key, chunk))
        outcomes += result.body["rows"]
    return outcomes


def _answers(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in o.items() if k not in ("position", "replayed")} for o in outcomes]


@pytest.fixture(params=BACKENDS)
def twin(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Two stores of one kind under one master key (so member ids and fingerprints agree),
    each with the same tree."""
    first = Backend(request.param, tmp_path / "command")
    second = Backend(request.param, tmp_path / "bulk")
    second.settings = second.settings.model_copy(
        update={"encryption_key": first.settings.encryption_key}
    )
    try:
        ledgers = first.open(), second.open()
        trees = found_tree(ledgers[0]), found_tree(ledgers[1])
        assert trees[0] == trees[1]
        yield ledgers, trees[0]
    finally:
        first.close()
        second.close()


# Rows as api/roster.py normalises them: strings, booleans; some invalid on purpose.
# A pool small enough for repeats in one file and people who are members from earlier examples,
# large enough that most files also bring new people (repeated within a chunk, too).
_people = st.integers(min_value=1, max_value=120)
_rows = st.fixed_dictionaries(
    {
        "id_number": st.one_of(
            _people.map(person),
            st.sampled_from(["110101199001011230", "12345", "11010119900101123X"]),
        ),
        "name": st.sampled_from(["张三", "  李四 ", "王" * 101, "a\x07b", "Zhao"]),
        "joined_on": st.sampled_from(
            ["2024-01-02", "2024-06-30", "1999-12-31", "2024-02-30", "24-1-2", "2099-01-01"]
        ),
        "mobile": st.sampled_from([None, "13912345678", "1391234", "23912345678"]),
        "migrant_worker": st.booleans(),
        "new_employment_form": st.booleans(),
    }
)
_counter = itertools.count(1)


@pytest.mark.parametrize("chunk_rows, chunks_per_write", [(3, 2)])
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_rows, min_size=1, max_size=14), exits=st.lists(_people, max_size=6))
def test_the_bulk_path_stores_what_the_command_path_stores(
    twin: Any,
    monkeypatch: pytest.MonkeyPatch,
    chunk_rows: int,
    chunks_per_write: int,
    rows: list[dict],
    exits: list[int],
) -> None:
    """For random rosters (invalid numbers, names, dates and mobiles, people repeated in the
    file, people already members from earlier examples, people who left and join again), both
    paths answer each row alike and store events that decode to the same topics, streams,
    versions and state: the member ids derived alike, the union's MembersAdmitted, the
    idempotency records."""
    (command_ledger, bulk_ledger), tree = twin
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(imports, "CHUNKS_PER_WRITE", chunks_per_write)
    # Some people leave first (the same on both stores), so that their rows are rejoins.
    for ledger in (command_ledger, bulk_ledger):
        for n in sorted(set(exits)):
            try:
                member = ledger.find_member(person(n))
            except Exception:
                continue
            if member["status"] == "active":
                with contextlib.suppress(DomainError):  # alike on both stores
                    ledger.execute(
                        ExitMember(
                            member_id=member["member_id"],
                            change_code=6,
                            reason_code=5,
                            effective_on="2024-03-01",
                        )
                    )
    numbered = [(n + 2, row) for n, row in enumerate(rows)]
    key = IdempotencyKey.parse("t", f"import-{next(_counter)}")
    heads = command_ledger.head_position(), bulk_ledger.head_position()
    by_command = _command_path(command_ledger, tree.base_a, numbered, key)
    by_bulk = join_rows(
        bulk_ledger,
        organization_code=tree.base_a,
        rows=numbered,
        actor="cli:import",
        idempotency=key,
    )
    assert _answers(by_bulk) == by_command
    assert _decoded(bulk_ledger, heads[1]) == _decoded(command_ledger, heads[0])


def test_a_joined_event_built_without_the_aggregate_maps_as_the_aggregates_own(
    ledger: Ledger,
) -> None:
    """Same class, fields in the same order, same topic; encoded by the same mapper, the
    stored payloads decode to equal events."""
    import datetime

    from domain.identity import IdNumber
    from domain.members import Member

    member_id = ledger.member_id_for(person(1))
    fields = dict(
        id_number=IdNumber.parse(person(1)).value,
        name="张三",
        mobile=None,
        migrant_worker=True,
        new_employment_form=False,
        organization_code=org_code(4, base=True),
        joined_on=datetime.date(2024, 1, 2),
    )
    from domain.base import acting_as

    with acting_as("cli:import"):
        own = Member(id=member_id, **fields).pending_events[0]
    built = joined_event(member_id, "cli:import", fields)
    assert type(built) is type(own)
    assert list(vars(built)) == list(vars(own))
    stored_own, stored_built = (
        ledger.mapper.to_stored_event(own),
        ledger.mapper.to_stored_event(built),
    )
    assert (stored_built.originator_id, stored_built.originator_version, stored_built.topic) == (
        stored_own.originator_id,
        stored_own.originator_version,
        stored_own.topic,
    )
    decoded = ledger.mapper.to_domain_event(stored_built)
    assert {k: v for k, v in vars(decoded).items() if k != "timestamp"} == {
        k: v for k, v in vars(own).items() if k != "timestamp"
    }


def _roster(n: int) -> list[tuple[int, dict]]:
    return [
        (
            i + 2,
            {
                "id_number": person(i + 1),
                "name": f"会员{i}",
                "joined_on": "2024-01-02",
                "mobile": None,
                "migrant_worker": False,
                "new_employment_form": False,
            },
        )
        for i in range(n)
    ]


def test_a_rerun_of_the_same_file_adds_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a key: every row is then refused (a member already), no event is written;
    with the first run's key: the first answer is replayed."""
    tree: Tree = found_tree(ledger)
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", 4)
    monkeypatch.setattr(imports, "CHUNKS_PER_WRITE", 2)
    rows = _roster(19)
    key = IdempotencyKey.parse("t", "rerun")
    first = join_rows(ledger, organization_code=tree.base_a, rows=rows, idempotency=key)
    assert all("member_id" in o for o in first)
    head = ledger.head_position()
    again = join_rows(ledger, organization_code=tree.base_a, rows=rows)
    assert [o["reason"] for o in again] == ["this person is already a member of a union"] * 19
    replayed = join_rows(ledger, organization_code=tree.base_a, rows=rows, idempotency=key)
    assert replayed == [{**o, "replayed": True} for o in first]
    assert ledger.head_position() == head
    assert ledger.get_organization(tree.base_a)["member_count"] == 19


def test_the_audit_chain_verifies_over_a_bulk_import(ledger: Ledger) -> None:
    tree = found_tree(ledger)
    join_rows(ledger, organization_code=tree.base_a, rows=_roster(30))
    ledger.execute(
        JoinMember(
            id_number=person(99), name="李四", organization_code=tree.base_b, joined_on="2024-01-02"
        )
    )
    trail = AuditTrail(ledger)
    trail.seal()
    report = trail.verify()
    assert report["ok"] is True, report
    assert report["verified_through"] == ledger.head_position()


def test_several_unions_share_a_transaction_and_each_gets_its_own_rows(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = found_tree(ledger)
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", 4)
    rows = _roster(14)
    head = ledger.head_position()
    a, b, c = imports.join_unions(
        ledger, [(tree.base_a, rows[:5]), (tree.base_b, rows[5:]), (tree.base_c, [])]
    )
    assert [o["row"] for o in a] == [r for r, _ in rows[:5]]
    assert [o["row"] for o in b] == [r for r, _ in rows[5:]] and c == []
    assert ledger.get_organization(tree.base_a)["member_count"] == 5
    assert ledger.get_organization(tree.base_b)["member_count"] == 9
    for outcome, (_, row) in zip(a + b, rows, strict=True):
        assert outcome["member_id"] == str(ledger.member_id_for(row["id_number"]))
    # 14 members, and one MembersAdmitted per chunk: 2 of union A's, 3 of union B's.
    assert ledger.head_position() - head == 14 + 2 + 3


def test_a_new_person_twice_in_one_chunk_joins_once(ledger: Ledger) -> None:
    tree = found_tree(ledger)
    rows = _roster(3)
    rows = [rows[0], (3, rows[0][1]), rows[1]]
    outcomes = join_rows(ledger, organization_code=tree.base_a, rows=rows)
    assert [o.get("reason") for o in outcomes] == [
        None,
        "this person is already a member of a union",
        None,
    ]
    assert ledger.get_organization(tree.base_a)["member_count"] == 2
