"""Event payloads are bound to their row (stream id, version, topic), on both stores.

Tampering is done as an intruder would: plain SQL on the events table. Rows "written the old
way" are made by eventsourcing's own Mapper with its AESCipher, exactly as stores written
before the binding hold them.
"""

from __future__ import annotations

import base64
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import Mapper
from eventsourcing.utils import Environment

from domain.organizations import Organization
from projections.audit.trail import AuditTrail
from projections.read_models.event_reader import UnreadableEvent
from projections.read_models.models import ReadModels
from service.application import Ledger
from service.commands import JoinMember, RecordDues
from service.tokens import Tokens
from storage.keys import derive_key
from storage.payload_binding import BOUND_MARKER, PayloadBindingError, PayloadCipher, is_bound
from tests.conftest import Backend
from tests.projections.test_audit import Raw
from tests.service.scenario import Tree, found_tree, person


@pytest.fixture
def raw(backend: Backend):
    handle = Raw(backend)
    yield handle
    handle.close()


def join_two(ledger: Ledger) -> tuple[str, str, Tree]:
    tree = found_tree(ledger)
    first = ledger.execute(
        JoinMember(
            id_number=person(1),
            name="张三",
            organization_code=tree.base_a,
            joined_on="2024-01-02",
            mobile="13812345678",
        )
    )
    second = ledger.execute(
        JoinMember(
            id_number=person(2),
            name="李四",
            organization_code=tree.base_b,
            joined_on="2024-01-03",
            mobile="13912345678",
        )
    )
    return first.body["member_id"], second.body["member_id"], tree


def position_of(ledger: Ledger, member_id: str) -> int:
    position = ledger.position_of(UUID(member_id), 1)
    assert position is not None
    return position


def old_mapper(ledger: Ledger) -> Mapper:
    """The mapper the ledger used before binding: eventsourcing's, with its AESCipher."""
    key = derive_key(base64.b64decode(ledger.settings.encryption_key), "event-cipher")
    cipher = AESCipher(Environment(env={"CIPHER_KEY": base64.b64encode(key).decode()}))
    return Mapper(
        transcoder=ledger.mapper.transcoder, compressor=ledger.mapper.compressor, cipher=cipher
    )


def record_dues(ledger: Ledger, tree: Tree) -> None:
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="25.00",
            received_on="2024-01-20",
        )
    )


def rewrite_the_old_way(ledger: Ledger, raw: Raw) -> int:
    """Re-encodes every stored row as the code before binding wrote it; returns how many."""
    old = old_mapper(ledger)
    notifications = ledger.recorder.select_notifications(start=1, limit=10**6)
    for n in notifications:
        raw.set_state(n.id, old.to_stored_event(ledger.mapper.to_domain_event(n)).state)
    return len(notifications)


def test_new_payloads_are_bound_and_open_only_in_their_row(ledger: Ledger):
    first, _, _ = join_two(ledger)
    n = ledger.recorder.select_notifications(start=position_of(ledger, first), limit=1)[0]
    assert is_bound(n.state)
    cipher = ledger.mapper.payloads
    assert cipher.open(n.state, n.originator_id, n.originator_version, n.topic)
    for stream, version, topic in (
        (Organization.id_for("x"), n.originator_version, n.topic),
        (n.originator_id, n.originator_version + 1, n.topic),
        (n.originator_id, n.originator_version, "ledger:Member.Exited"),
    ):
        with pytest.raises(PayloadBindingError):
            cipher.open(n.state, stream, version, topic)


def test_two_swapped_payloads_fail_on_read_with_a_named_error(
    backend: Backend, ledger: Ledger, raw: Raw
):
    first, second, _ = join_two(ledger)
    a, b = position_of(ledger, first), position_of(ledger, second)
    state_a, state_b = raw.state(a), raw.state(b)
    raw.set_state(a, state_b)
    raw.set_state(b, state_a)
    fresh = backend.open()  # no cached aggregates: reads the rows
    for member_id in (first, second):
        with pytest.raises(PayloadBindingError) as caught:
            fresh.get_member(member_id)
        assert "moved from another row" in str(caught.value)
        assert member_id.replace("-", "") in str(caught.value).replace("-", "")


def test_a_moved_payload_is_listed_with_a_decode_error_and_stops_the_projection(
    backend: Backend, ledger: Ledger, raw: Raw
):
    first, second, _ = join_two(ledger)
    a, b = position_of(ledger, first), position_of(ledger, second)
    raw.set_state(a, raw.state(b))
    fresh = backend.open()
    listed = {e["position"]: e for e in AuditTrail(fresh).events(after=0, limit=1000)["items"]}
    assert set(listed) == set(raw.positions())  # every row is still listed
    assert "PayloadBindingError" in listed[a]["decode_error"]
    assert listed[a]["data"] is None
    assert "decode_error" not in listed[b]
    read_models = ReadModels(fresh)
    try:
        with pytest.raises(UnreadableEvent) as caught:
            read_models.catch_up()
        assert caught.value.position == a
        assert f"position {a}" in str(caught.value)
        assert read_models.position() < a  # stopped before it, nothing of it applied
    finally:
        read_models.close()


def test_rows_written_the_old_way_still_read(backend: Backend, ledger: Ledger, raw: Raw):
    first, _, tree = join_two(ledger)
    before = backend.open().get_member(first)
    old_rows = rewrite_the_old_way(ledger, raw)
    assert old_rows == len(raw.positions())
    assert not any(is_bound(raw.state(p)) for p in raw.positions()[:5])
    # A store with old rows and new ones: both read, through the mapper and the projector.
    record_dues(ledger, tree)
    assert is_bound(raw.state(raw.positions()[-1]))
    fresh = backend.open()
    assert fresh.get_member(first) == before
    read_models = ReadModels(fresh)
    try:
        assert read_models.catch_up() == fresh.head_position()
    finally:
        read_models.close()
    assert all(
        "decode_error" not in e for e in AuditTrail(fresh).events(after=0, limit=1000)["items"]
    )


def test_snapshots_are_bound_too(ledger: Ledger):
    tree = found_tree(ledger)
    org_id = Organization.id_for(tree.base_a)
    ledger.take_snapshot(org_id)
    snapshots = ledger.snapshots.recorder.select_events(org_id)
    assert snapshots and all(is_bound(s.state) for s in snapshots)
    snapshot = snapshots[-1]
    # The snapshot's payload opens for its own row only.
    with pytest.raises(PayloadBindingError):
        ledger.mapper.payloads.open(
            snapshot.state,
            Organization.id_for(tree.base_b),
            snapshot.originator_version,
            snapshot.topic,
        )
    assert ledger.mapper.to_domain_event(snapshot).originator_id == org_id


def test_an_old_payload_whose_nonce_begins_like_the_marker_still_reads():
    """One old payload in 65,536 has a random nonce that begins with the marker bytes."""
    key = bytes(range(32))
    nonce = BOUND_MARKER + bytes(10)
    sealed = AESGCM(key).encrypt(nonce, b"payload", None)
    old_layout = nonce + sealed[-16:] + sealed[:-16]  # eventsourcing's: nonce, tag, text
    assert is_bound(old_layout)
    stream = Organization.id_for("x")
    assert PayloadCipher(key).open(old_layout, stream, 1, "t") == b"payload"
    old = AESCipher(Environment(env={"CIPHER_KEY": base64.b64encode(key).decode()}))
    assert old.decrypt(old_layout) == b"payload"  # it is what the old code wrote


def test_the_mapper_seals_what_the_library_would_encode_and_compress(ledger: Ledger):
    """BoundMapper.to_stored_event does Mapper.to_stored_event's steps itself (one StoredEvent
    instead of two): for every kind of event a history stores (members, unions, books,
    vouchers, idempotency records, an event of class version 2), the row's identity, topic
    and opened payload are the library's."""
    _, _, tree = join_two(ledger)
    record_dues(ledger, tree)
    Tokens(ledger).mint(role="clerk")  # a Minted event is of class version 2
    notifications = ledger.recorder.select_notifications(start=1, limit=10**6)
    class_versions = set()
    for n in notifications:
        event = ledger.mapper.to_domain_event(n)
        class_versions.add(getattr(type(event), "class_version", 1))
        ours = ledger.mapper.to_stored_event(event)
        library = Mapper.to_stored_event(ledger.mapper, event)  # no cipher: encoded, compressed
        assert (ours.originator_id, ours.originator_version, ours.topic) == (
            library.originator_id,
            library.originator_version,
            library.topic,
        )
        assert ledger.mapper.open_state(ours) == library.state
    assert len(notifications) > 10 and class_versions > {1}
