"""Provenance: the raw event stream for auditors, in order, traceable, and masked."""

from __future__ import annotations

import json

import pytest

from projections.audit import AuditTrail
from projections.audit_events import without_secrets
from service.application import Ledger
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


def test_the_stream_is_complete_ordered_and_paged(trail: AuditTrail, ledger: Ledger):
    everything = trail.events(limit=1000)
    positions = [e["position"] for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert positions[-1] == ledger.head_position()
    first_page = trail.events(limit=5)
    second_page = trail.events(after=first_page[-1]["position"], limit=5)
    assert first_page + second_page == everything[:10]
    assert trail.events(after=positions[-1]) == []
    for record in everything:
        assert set(record) >= {"position", "recorded_at", "stream_id", "version", "type",
                               "data", "actor"}
        assert record["type"].startswith("ledger:")
        assert record["recorded_at"].endswith("+00:00")
    json.dumps(everything)  # JSON-ready as it stands


def test_every_event_names_its_actor(trail: AuditTrail):
    joins = [e for e in trail.events(limit=1000) if e["type"] == "ledger:Member.Joined"]
    assert [e["actor"] for e in joins] == ["token:clerk-a", "system", "system"]


def test_personal_data_is_masked_everywhere(trail: AuditTrail):
    text = json.dumps(trail.events(limit=1000), ensure_ascii=False)
    for secret in (PERSON_1, PERSON_2, PERSON_3, MOBILE_1, "13900001111", "张三", "欧阳娜娜",
                   "李四"):
        assert secret not in text
    assert PERSON_1[:6] + "********" + PERSON_1[14:] in text
    assert "138****5678" in text and "张*" in text and "欧***" in text
    # The birth dates the masked numbers hide are nowhere either (an idempotent join keeps
    # the member's whole view in its record), nor is any request fingerprint.
    for number in (PERSON_1, PERSON_2, PERSON_3):
        birth = number[6:14]
        assert birth not in text and f"{birth[:4]}-{birth[4:6]}-{birth[6:]}" not in text
    assert '"birth_year": 1980' in text
    records = [e for e in trail.events(limit=1000) if e["type"].startswith(
        "ledger:IdempotencyRecord")]
    assert records and not any("fingerprint" in e["data"] for e in records)
    # Union names are not personal data and stay readable.
    assert "北京市总工会" in text


def test_unmasked_the_stream_shows_personal_data_but_never_a_fingerprint(trail: AuditTrail):
    everything = trail.events(limit=1000, unmasked=True)
    text = json.dumps(everything, ensure_ascii=False)
    for secret in (PERSON_1, MOBILE_1, "张三", "欧阳娜娜"):
        assert secret in text
    assert not any("fingerprint" in (e["data"] or {}) for e in everything)


def test_filtering_by_organisation_keeps_its_own_and_mentioning_events(trail: AuditTrail):
    everything = trail.events(limit=1000)
    only_b = trail.events(limit=1000, organization_code=BASE_B)
    assert only_b and len(only_b) < len(everything)
    for record in only_b:
        assert BASE_B in json.dumps(record["data"]) or record["type"].startswith(
            ("ledger:Organisation.", "ledger:Book.")
        )
    types = {e["type"] for e in only_b}
    assert {"ledger:Organisation.Founded", "ledger:Member.Joined", "ledger:Voucher.Posted",
            "ledger:Book.Recorded"} <= types
    assert not any(BASE_A in json.dumps(e["data"]) and BASE_B not in json.dumps(e["data"])
                   for e in only_b if e["type"] == "ledger:Voucher.Posted")
    # Limits hold with a filter too, and paging continues after the last one returned.
    first = trail.events(limit=2, organization_code=BASE_B)
    rest = trail.events(after=first[-1]["position"], limit=1000, organization_code=BASE_B)
    assert first + rest == only_b


def test_a_tampered_event_is_still_listed_in_place(trail: AuditTrail, backend):
    raw = Raw(backend)
    try:
        target = raw.positions()[3]
        raw.flip_byte(target, 20)
    finally:
        raw.close()
    listed = {e["position"]: e for e in trail.events(limit=1000)}
    assert listed[target]["data"] is None
    assert "altered" in listed[target]["decode_error"]


@pytest.mark.parametrize("bad", [{"after": -1}, {"limit": 0}])
def test_bad_paging_is_refused(trail: AuditTrail, bad):
    with pytest.raises(ValueError):
        trail.events(**bad)


def test_secrets_are_starred_and_fingerprints_left_out_for_everyone():
    data = {"command": "join_member", "fingerprint": "hmac-sha256:00", "secret_hash": "abc",
            "result": {"member_id": "m"}}
    assert without_secrets(data) == {"command": "join_member", "secret_hash": "***",
                                     "result": {"member_id": "m"}}
