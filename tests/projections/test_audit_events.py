"""Provenance: the raw event stream for auditors, in order, traceable, and masked."""

from __future__ import annotations

import json
import random

import pytest

from projections.audit import trail as trail_module
from projections.audit.events import without_secrets
from projections.audit.trail import AuditTrail
from projections.read_models.event_reader import UNION_CODE_IN_JSON
from projections.read_models.models import ReadModels
from projections.read_models.projector import UNREAD_TOPICS
from service.application import Ledger
from service.commands import ClosePeriod, RecordDues
from tests.projections.history import HistoryWriter
from tests.projections.test_audit import (
    BASE_A,
    BASE_B,
    MOBILE_1,
    PERSON_1,
    PERSON_2,
    PERSON_3,
    Raw,
    build_deployment,
)


@pytest.fixture
def trail(ledger: Ledger) -> AuditTrail:
    build_deployment(ledger)
    return AuditTrail(ledger)


@pytest.fixture(params=["scanning", "indexed"])
def either_trail(request, ledger: Ledger):
    """A trail that scans, and one beside the read models, whose audit index serves
    filtered lists: both must list the same events."""
    build_deployment(ledger)
    if request.param == "scanning":
        yield AuditTrail(ledger)
        return
    read_models = ReadModels(ledger)
    read_models.catch_up()
    yield AuditTrail(ledger, read_models)
    read_models.close()


def listed(trail: AuditTrail, **query) -> list[dict]:
    return trail.events(**query)["items"]


def test_the_stream_is_complete_ordered_and_paged(trail: AuditTrail, ledger: Ledger):
    everything = listed(trail, limit=1000)
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert positions[-1] == ledger.head_position()
    first_page = trail.events(limit=5)
    assert first_page["next_after"] == first_page["items"][-1]["position"]
    second_page = listed(trail, after=first_page["next_after"], limit=5)
    assert first_page["items"] + second_page == everything[:10]
    assert trail.events(after=positions[-1]) == {"items": [], "next_after": None}
    for record in everything:
        assert set(record) >= {
            "position",
            "recorded_at",
            "stream_id",
            "version",
            "type",
            "data",
            "actor",
        }
        assert record["type"].startswith("ledger:")
        assert record["recorded_at"].endswith("+00:00")
    json.dumps(everything)  # JSON-ready as it stands


def test_every_event_names_its_actor(trail: AuditTrail):
    joins = [e for e in listed(trail, limit=1000) if e["type"] == "ledger:Member.Joined"]
    assert [e["actor"] for e in joins] == ["token:clerk-a", "system", "system"]


def test_personal_data_is_masked_everywhere(trail: AuditTrail):
    text = json.dumps(listed(trail, limit=1000), ensure_ascii=False)
    for secret in (
        PERSON_1,
        PERSON_2,
        PERSON_3,
        MOBILE_1,
        "13900001111",
        "张三",
        "欧阳娜娜",
        "李四",
    ):
        assert secret not in text
    assert PERSON_1[:6] + "********" + PERSON_1[14:] in text
    assert "138****5678" in text and "张*" in text and "欧***" in text
    # The birth dates the masked numbers hide are nowhere either (an idempotent join keeps
    # the member's whole view in its record), nor is any request fingerprint.
    for number in (PERSON_1, PERSON_2, PERSON_3):
        birth = number[6:14]
        assert birth not in text and f"{birth[:4]}-{birth[4:6]}-{birth[6:]}" not in text
    assert '"birth_year": 1980' in text
    records = [
        e for e in listed(trail, limit=1000) if e["type"].startswith("ledger:IdempotencyRecord")
    ]
    assert records and not any("fingerprint" in e["data"] for e in records)
    # Union names are not personal data and stay readable.
    assert "北京市总工会" in text


def test_unmasked_the_stream_shows_personal_data_but_never_a_fingerprint(trail: AuditTrail):
    everything = listed(trail, limit=1000, unmasked=True)
    text = json.dumps(everything, ensure_ascii=False)
    for secret in (PERSON_1, MOBILE_1, "张三", "欧阳娜娜"):
        assert secret in text
    assert not any("fingerprint" in (e["data"] or {}) for e in everything)


def test_filtering_by_organization_keeps_its_own_and_mentioning_events(either_trail: AuditTrail):
    trail = either_trail
    everything = listed(trail, limit=1000)
    only_b = listed(trail, limit=1000, organization_code=BASE_B)
    assert only_b and len(only_b) < len(everything)
    for record in only_b:
        assert BASE_B in json.dumps(record["data"]) or record["type"].startswith(
            ("ledger:Organisation.", "ledger:Book.")
        )
    types = {e["type"] for e in only_b}
    assert {
        "ledger:Organisation.Founded",
        "ledger:Member.Joined",
        "ledger:Voucher.Posted",
        "ledger:Book.Recorded",
    } <= types
    assert not any(
        BASE_A in json.dumps(e["data"]) and BASE_B not in json.dumps(e["data"])
        for e in only_b
        if e["type"] == "ledger:Voucher.Posted"
    )
    # Limits hold with a filter too, and paging continues after the last one returned.
    first = trail.events(limit=2, organization_code=BASE_B)
    rest = listed(trail, after=first["next_after"], limit=1000, organization_code=BASE_B)
    assert first["items"] + rest == only_b


def test_a_tampered_event_is_still_listed_in_place(trail: AuditTrail, backend):
    raw = Raw(backend)
    try:
        target = raw.positions()[3]
        raw.flip_byte(target, 20)
    finally:
        raw.close()
    by_position = {e["position"]: e for e in listed(trail, limit=1000)}
    assert by_position[target]["data"] is None
    assert "altered" in by_position[target]["decode_error"]


@pytest.mark.parametrize("bad", [{"after": -1}, {"limit": 0}])
def test_bad_paging_is_refused(trail: AuditTrail, bad):
    with pytest.raises(ValueError):
        trail.events(**bad)


def test_secrets_are_starred_and_fingerprints_left_out_for_everyone():
    data = {
        "command": "join_member",
        "fingerprint": "hmac-sha256:00",
        "secret_hash": "abc",
        "result": {"member_id": "m"},
    }
    assert without_secrets(data) == {
        "command": "join_member",
        "secret_hash": "***",
        "result": {"member_id": "m"},
    }


class DecodeCounter:
    """Counts the events the trail decodes (a spy on its decoding function; decoding
    unchanged)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ledger: Ledger) -> None:
        self.count = 0
        real = trail_module.decode

        def counted(mapper, notification):
            assert mapper is ledger.mapper
            self.count += 1
            return real(mapper, notification)

        monkeypatch.setattr(trail_module, "decode", counted)


def busy_union_writes(ledger: Ledger, receipts: int) -> None:
    for _ in range(receipts):
        ledger.execute(
            RecordDues(
                organization_code=BASE_A, period="2024-01", amount="1.00", received_on="2024-01-20"
            )
        )


def test_a_small_union_in_a_large_log_reads_a_bounded_number_of_events(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    build_deployment(ledger)
    busy_union_writes(ledger, 600)  # BASE_A's: three events a receipt
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        indexed = AuditTrail(ledger, read_models)
        scanning = AuditTrail(ledger)
        expected = scanning.events(limit=1000, organization_code=BASE_B)
        assert ledger.head_position() > 1200 and 0 < len(expected["items"]) < 20
        decodes = DecodeCounter(monkeypatch, ledger)
        page = indexed.events(limit=1000, organization_code=BASE_B)
        assert page == expected
        assert decodes.count == len(expected["items"])  # only the union's own events
    finally:
        read_models.close()


def test_events_beyond_the_index_are_scanned_a_bounded_number_at_a_time(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    build_deployment(ledger)
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        indexed_through = read_models.position()
        busy_union_writes(ledger, 150)  # not projected: beyond the index
        ledger.execute(
            RecordDues(
                organization_code=BASE_B, period="2024-02", amount="12.50", received_on="2024-02-21"
            )
        )
        expected = AuditTrail(ledger).events(limit=1000, organization_code=BASE_B)["items"]
        monkeypatch.setattr("projections.audit.trail.MAX_SCANNED_EVENTS", 100)
        trail = AuditTrail(ledger, read_models)
        decodes = DecodeCounter(monkeypatch, ledger)
        pages, after = [], 0
        while True:
            before = decodes.count
            page = trail.events(after=after, limit=1000, organization_code=BASE_B)
            assert decodes.count - before <= 100 + 1000  # the cap, plus the indexed hits
            pages.append(page)
            if page["next_after"] is None:
                break
            assert page["next_after"] > after
            after = page["next_after"]
        assert len(pages) > 3  # stopped at the cap and went on
        assert pages[0]["next_after"] == indexed_through + 100
        assert [e for p in pages for e in p["items"]] == expected
    finally:
        read_models.close()


def test_the_index_lists_what_a_full_scan_lists_for_every_union(ledger: Ledger):
    """A varied history (transfers, levies shared up the tree, remittances, reorganisations):
    for every union, the indexed list is exactly the scanned one."""
    writer = HistoryWriter(ledger, random.Random(11)).steps(150)
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        indexed, scanning = AuditTrail(ledger, read_models), AuditTrail(ledger)
        tree = writer.tree
        codes = [
            tree.province,
            tree.city,
            tree.county,
            tree.township,
            tree.base_a,
            tree.base_b,
            tree.base_c,
        ]
        for code in codes:
            expected = scanning.events(limit=1000, organization_code=code)
            assert expected["items"], code
            assert indexed.events(limit=1000, organization_code=code) == expected, code
    finally:
        read_models.close()


def test_the_topics_the_index_does_not_read_name_no_union(ledger: Ledger):
    """The audit index lists events of UNREAD_TOPICS under their stream's union alone, without
    opening them: so none of them may name a union in its data."""
    writer = HistoryWriter(ledger, random.Random(5)).steps(150)
    # The province: the one union whose months the writer never closes.
    ledger.execute(ClosePeriod(organization_code=writer.tree.province, period="2023-01"))
    seen = set()
    for n in ledger.recorder.select_notifications(start=1, limit=10**6):
        if n.topic in UNREAD_TOPICS:
            plain = ledger.mapper.compressor.decompress(ledger.mapper.open_state(n))
            assert UNION_CODE_IN_JSON.findall(plain) == [], (n.topic, plain)
            seen.add(n.topic)
    assert {"ledger:Organisation.MemberAdmitted", "ledger:Book.MonthClosed"} <= seen
