"""The hash chain and its checker on rows in memory: every kind of damage, at every position."""

from __future__ import annotations

import os
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.audit.chain import GENESIS, SealPoint, chain_links, check_chain, frame, next_link


def make_rows(count: int, start: int = 1, gaps: frozenset[int] = frozenset()):
    rows = []
    position = start
    while len(rows) < count:
        if position not in gaps:
            rows.append(
                (
                    position,
                    uuid4().hex,
                    1 + position % 3,
                    "ledger:Test.Happened",
                    os.urandom(40 + position % 7),
                )
            )
        position += 1
    return rows


def links_of(rows):
    return list(chain_links(rows))


def seal_at(rows, position: int) -> SealPoint:
    chained = [r for r in rows if r[0] <= position]
    head = links_of(chained)[-1][1] if chained else GENESIS
    return SealPoint(position, head, len(chained), "store")


def first_bad(check):
    problem = check.first_bad
    return None if problem is None else problem.position


def test_frame_is_unambiguous_and_same_for_both_stores():
    stream = uuid4()
    assert frame(7, stream, 2, "t", b"x") == frame(7, stream.hex, 2, "t", b"x")
    # Moving a byte between fields changes the frame: lengths are framed.
    assert frame(1, "ab", 1, "c", b"") != frame(1, "a", 1, "bc", b"")
    assert frame(1, "a", 1, "b", b"c") != frame(1, "a", 1, "bc", b"")


def test_each_link_depends_on_every_field_and_the_previous_link():
    base = (5, UUID(int=1).hex, 1, "topic", b"payload")
    link = next_link(GENESIS, *base)
    variants = [
        (6, *base[1:]),
        (5, UUID(int=2).hex, 1, "topic", b"payload"),
        (5, UUID(int=1).hex, 2, "topic", b"payload"),
        (5, UUID(int=1).hex, 1, "topic2", b"payload"),
        (5, UUID(int=1).hex, 1, "topic", b"paylobd"),
    ]
    for variant in variants:
        assert next_link(GENESIS, *variant) != link
    assert next_link(b"\x00" * 32, *base) != link


def test_intact_rows_verify_against_links_and_seals():
    rows = make_rows(50, gaps=frozenset({7, 8, 30}))
    seals = [seal_at(rows, 20), seal_at(rows, rows[-1][0])]
    check = check_chain(rows, links_of(rows), seals)
    assert check.problems == []
    assert check.matched_seal_positions == [20, rows[-1][0]]
    assert check.events_checked == 50
    assert check.unsealed_events == 0


def test_rows_after_the_last_seal_are_counted_as_unsealed():
    rows = make_rows(30)
    check = check_chain(rows, links_of(rows[:20]), [seal_at(rows, 20)])
    assert check.problems == []
    assert check.unsealed_events == 10


def test_a_seal_past_deleted_links_and_rows_reports_truncation():
    rows = make_rows(30)
    seal = seal_at(rows, 30)
    check = check_chain(rows[:25], links_of(rows[:25]), [seal])
    assert first_bad(check) == 26
    assert check.problems[0].kind == "seal_mismatch"
    assert "removed" in check.problems[0].reason


def test_rewritten_links_are_caught_by_the_seal_at_the_stretch_start():
    rows = make_rows(40)
    seals = [seal_at(rows, 10), seal_at(rows, 40)]
    tampered = list(rows)
    tampered[24] = (25, rows[24][1], rows[24][2], rows[24][3], b"forged")
    check = check_chain(tampered, links_of(tampered), seals)
    # The links agree with the forged rows; only the seal knows, so the stretch is named.
    assert [p.kind for p in check.problems] == ["seal_mismatch"]
    assert first_bad(check) == 11
    assert check.matched_seal_positions == [10]


def test_an_altered_link_with_intact_rows_blames_the_chain_table():
    rows = make_rows(20)
    links = links_of(rows)
    links[5] = (links[5][0], b"\x01" * 32)
    check = check_chain(rows, links, [seal_at(rows, 20)])
    # Link 6 fails its own row and misleads the check of row 7; both blame the table.
    assert [(p.position, p.kind) for p in check.problems] == [
        (6, "chain_table_altered"),
        (7, "chain_table_altered"),
    ]
    assert check.matched_seal_positions == [20]


def test_each_seal_judges_its_own_stretch():
    rows = make_rows(30)
    seals = [seal_at(rows, 10), seal_at(rows, 20), seal_at(rows, 30)]
    tampered = list(rows)
    tampered[14] = (15, *rows[14][1:4], b"x")
    check = check_chain(tampered, links_of(rows), seals)
    assert first_bad(check) == 15
    assert check.matched_seal_positions == [10, 30]


MUTATIONS = ("flip", "delete", "insert", "swap", "truncate")


@settings(deadline=None, max_examples=150)
@given(
    count=st.integers(min_value=2, max_value=40),
    mutation=st.sampled_from(MUTATIONS),
    data=st.data(),
)
def test_any_single_tampering_is_found_at_its_position(count, mutation, data):
    gaps = frozenset(data.draw(st.sets(st.integers(2, 60), max_size=5)))
    rows = make_rows(count, gaps=gaps)
    positions = [r[0] for r in rows]
    seal_position = data.draw(st.sampled_from(positions[1:]))
    sealed_rows = [r for r in rows if r[0] <= seal_position]
    links = links_of(sealed_rows)
    seals = [seal_at(rows, seal_position)]
    index = data.draw(st.integers(0, len(sealed_rows) - 1))
    target = sealed_rows[index][0]
    tampered = list(rows)
    if mutation == "flip":
        position, stream, version, topic, state = tampered[index]
        byte = data.draw(st.integers(0, len(state) - 1))
        flipped = state[:byte] + bytes([state[byte] ^ 0x01]) + state[byte + 1 :]
        tampered[index] = (position, stream, version, topic, flipped)
        expected = target
    elif mutation == "delete":
        del tampered[index]
        expected = target
    elif mutation == "insert":
        # A forged row takes the position, and every later row moves up by one.
        forged = (target, uuid4().hex, 1, "ledger:Test.Forged", b"forged")
        tampered = tampered[:index] + [forged] + [(r[0] + 1, *r[1:]) for r in tampered[index:]]
        expected = target
    elif mutation == "swap":
        other = data.draw(st.integers(0, len(sealed_rows) - 1).filter(lambda i: i != index))
        a, b = sorted((index, other))
        if tampered[a][4] == tampered[b][4]:
            return
        ra, rb = tampered[a], tampered[b]
        tampered[a] = (*ra[:4], rb[4])
        tampered[b] = (*rb[:4], ra[4])
        expected = tampered[a][0]
    else:
        tampered = tampered[:index]
        expected = target
    check = check_chain(tampered, links, seals)
    assert first_bad(check) == expected, check.problems
    assert check.matched_seal_positions == []
    # The same damage with the links table wiped is still caught, by the seal alone.
    blind = check_chain(tampered, [], seals)
    assert blind.problems and all(p.kind == "seal_mismatch" for p in blind.problems)


@pytest.mark.parametrize("count", [0, 1, 5])
def test_a_seal_over_nothing_or_everything_matches(count):
    rows = make_rows(count)
    head = rows[-1][0] if rows else 0
    check = check_chain(rows, links_of(rows), [seal_at(rows, head)])
    assert check.problems == []
    assert check.matched_seal_positions == [head]


def test_uuid_stream_ids_chain_like_their_hex_form():
    rows = make_rows(10)
    as_uuids = [(p, UUID(hex=s), v, t, st) for p, s, v, t, st in rows]
    check = check_chain(as_uuids, links_of(rows), [seal_at(rows, 10)])
    assert check.problems == [] and check.matched_seal_positions == [10]


def test_rows_with_tampered_column_types_are_reported_not_fatal():
    rows = make_rows(6)
    links = links_of(rows)
    odd = list(rows)
    odd[1] = (2, rows[1][1], "three", rows[1][3], rows[1][4])  # SQLite lets a text in
    odd[3] = (4, rows[3][1], rows[3][2], rows[3][3], rows[3][4].hex())
    odd[4] = (5, None, rows[4][2], rows[4][3], None)
    check = check_chain(odd, links, [seal_at(rows, 6)])
    assert [p.position for p in check.problems if p.kind == "event_changed"] == [2, 4, 5]
