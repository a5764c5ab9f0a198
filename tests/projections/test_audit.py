"""The audit trail against real tampering of the real stores (SQLite and PostgreSQL).

Each test writes events through the ledger, seals, then changes the database behind the
application's back with plain SQL, as an intruder or a careless administrator would.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import stat
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from projections.audit.chain import chain_links
from projections.audit.seals import load_signing_key, make_seal, public_key_text
from projections.audit.store import ChainContradictsSeal
from projections.audit.trail import AuditTrail
from scripts import synthetic
from service.application import Ledger
from service.commands import CorrectMember, FoundOrganization, JoinMember, RecordDues, RecordExpense
from service.idempotency import IdempotencyKey
from tests.conftest import Backend

ROOT = synthetic.union_code("110000", 1, base=False)
BASE_A = synthetic.union_code("110105", 2, base=True)
BASE_B = synthetic.union_code("110105", 3, base=True)
EMPLOYER_A = synthetic.employer_code("110105", 4)
EMPLOYER_B = synthetic.employer_code("110105", 5)
PERSON_1 = synthetic.id_number("110105", datetime.date(1980, 1, 2), 1)
PERSON_2 = synthetic.id_number("110105", datetime.date(1990, 3, 4), 2)
PERSON_3 = synthetic.id_number("110105", datetime.date(1975, 5, 6), 3)
MOBILE_1 = "13812345678"


def build_deployment(ledger: Ledger) -> None:
    """A small but varied history: unions, members with personal data, money, corrections."""
    ledger.execute(
        FoundOrganization(
            code=ROOT,
            name="北京市总工会",
            level="province",
            parent_code=None,
            region_code="110000",
            founded_on="1950-05-01",
        )
    )
    for code, employer in ((BASE_A, EMPLOYER_A), (BASE_B, EMPLOYER_B)):
        ledger.execute(
            FoundOrganization(
                code=code,
                name=f"工会{code[-3:]}",
                level="base",
                parent_code=ROOT,
                region_code="110105",
                founded_on="2001-01-01",
                employer_code=employer,
                employee_count=50,
            )
        )
    joined = ledger.execute(
        JoinMember(
            id_number=PERSON_1,
            name="张三",
            organization_code=BASE_A,
            joined_on="2020-01-01",
            mobile=MOBILE_1,
        ),
        actor="token:clerk-a",
        idempotency=IdempotencyKey.parse(BASE_A, "join-1"),
    )
    ledger.execute(
        JoinMember(
            id_number=PERSON_2, name="欧阳娜娜", organization_code=BASE_A, joined_on="2021-02-01"
        )
    )
    ledger.execute(
        JoinMember(
            id_number=PERSON_3, name="李四", organization_code=BASE_B, joined_on="2019-06-01"
        )
    )
    ledger.execute(
        CorrectMember(
            member_id=joined.body["member_id"],
            changes={"mobile": "13900001111"},
            note=f"证件 {PERSON_1} 电话 13900001111 核实",
        )
    )
    ledger.execute(
        RecordDues(
            organization_code=BASE_A, period="2024-01", amount="25.00", received_on="2024-01-20"
        )
    )
    ledger.execute(
        RecordDues(
            organization_code=BASE_B, period="2024-01", amount="12.50", received_on="2024-01-21"
        )
    )
    ledger.execute(
        RecordExpense(
            organization_code=BASE_A,
            account_code="501",
            amount="10.00",
            earmarked=False,
            description="职工活动",
            paid_on="2024-01-25",
        )
    )


class Raw:
    """Plain SQL on the events table, with no help from the application."""

    def __init__(self, backend: Backend) -> None:
        self.sqlite = backend.kind == "sqlite"
        if self.sqlite:
            self.conn: Any = sqlite3.connect(backend.sqlite_path, isolation_level=None)
            self.table, self.pos, self.ph = "stored_events", "rowid", "?"
        else:
            self.conn = psycopg.connect(backend.url, autocommit=True)
            self.table, self.pos, self.ph = "ledger_events", "notification_id", "%s"

    def close(self) -> None:
        self.conn.close()

    def run(self, statement: str, params: tuple = ()) -> list[tuple]:
        statement = statement.format(t=self.table, pos=self.pos).replace("?", self.ph)
        cursor = self.conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []

    def positions(self) -> list[int]:
        return [r[0] for r in self.run("SELECT {pos} FROM {t} ORDER BY {pos}")]

    def state(self, position: int) -> bytes:
        return bytes(self.run("SELECT state FROM {t} WHERE {pos} = ?", (position,))[0][0])

    def set_state(self, position: int, state: bytes) -> None:
        self.run("UPDATE {t} SET state = ? WHERE {pos} = ?", (state, position))

    def flip_byte(self, position: int, index: int) -> None:
        state = bytearray(self.state(position))
        state[index] ^= 0x01
        self.set_state(position, bytes(state))

    def delete(self, position: int) -> None:
        self.run("DELETE FROM {t} WHERE {pos} = ?", (position,))

    def delete_after(self, position: int) -> None:
        self.run("DELETE FROM {t} WHERE {pos} > ?", (position,))

    def forge(self, position: int, copy_of: int) -> None:
        """A new row at `position`, its payload copied from a real event (so it decrypts)."""
        topic, state = self.run("SELECT topic, state FROM {t} WHERE {pos} = ?", (copy_of,))[0]
        stream = uuid4()
        columns = f"{self.pos}, originator_id, originator_version, topic, state"
        self.run(
            f"INSERT INTO {{t}} ({columns}) VALUES (?, ?, ?, ?, ?)",
            (position, stream.hex if self.sqlite else stream, 1, topic, bytes(state)),
        )

    def shift_up_after(self, position: int) -> None:
        """Moves every row after `position` up by one, through negatives to stay unique."""
        self.run("UPDATE {t} SET {pos} = -({pos} + 1) WHERE {pos} > ?", (position,))
        self.run("UPDATE {t} SET {pos} = -{pos} WHERE {pos} < 0")


@pytest.fixture
def raw(backend: Backend):
    handle = Raw(backend)
    yield handle
    handle.close()


@pytest.fixture
def trail(ledger: Ledger) -> AuditTrail:
    build_deployment(ledger)
    return AuditTrail(ledger)


def assert_bad_at(report: dict[str, Any], position: int, kind: str) -> None:
    assert report["ok"] is False
    assert report["first_bad_position"] == position, report
    located = [p for p in report["problems"] if p["position"] == position]
    assert kind in {p["kind"] for p in located}, report["problems"]
    assert report["verified_through"] < position


# --- intact stores ---------------------------------------------------------------------------


def test_an_untouched_store_verifies(trail: AuditTrail, ledger: Ledger, raw: Raw):
    first = trail.seal()
    ledger.execute(
        RecordDues(
            organization_code=BASE_B, period="2024-02", amount="12.50", received_on="2024-02-21"
        )
    )
    second = trail.seal()
    ledger.execute(
        RecordDues(
            organization_code=BASE_B, period="2024-03", amount="12.50", received_on="2024-03-21"
        )
    )
    report = trail.verify()
    head = raw.positions()[-1]
    assert report["ok"] is True, report
    assert report["first_bad_position"] is None
    assert report["seals_checked"] == 2
    assert report["verified_through"] == second["position"] > first["position"]
    assert report["sealed_through"] == second["position"]
    assert report["events_checked"] == len(raw.positions())
    assert report["unsealed_events"] == head - second["position"] > 0
    assert report["head_position"] == head


def test_a_seal_is_signed_published_and_stored(trail: AuditTrail, backend: Backend, raw: Raw):
    seal = trail.seal()
    assert seal["position"] == raw.positions()[-1]
    assert seal["event_count"] == len(raw.positions())
    assert {"position", "chain_hash", "signature", "public_key", "sealed_at"} <= set(seal)
    assert datetime.datetime.fromisoformat(seal["sealed_at"]).utcoffset() is not None
    assert trail.seals() == [seal]
    key_file = backend.settings.audit_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert seal["public_key"] == trail.public_key()
    # The chain can be recomputed from the raw rows alone, without any key.
    rows = raw.run(
        "SELECT {pos}, originator_id, originator_version, topic, state FROM {t} ORDER BY {pos}"
    )
    assert list(chain_links(rows))[-1][1].hex() == seal["chain_hash"]


def test_sealing_twice_without_new_events_repeats_the_head(trail: AuditTrail):
    first, second = trail.seal(), trail.seal()
    assert (first["position"], first["chain_hash"]) == (second["position"], second["chain_hash"])
    assert trail.verify()["ok"] is True


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_position_gap_from_a_rolled_back_insert_is_not_tampering(
    trail: AuditTrail, ledger: Ledger, raw: Raw
):
    gap = raw.positions()[-1] + 1
    # A real rolled-back insert: PostgreSQL's sequence does not give the id back.
    with psycopg.connect(ledger.settings.database_url) as conn:
        conn.execute(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, "
            "state) VALUES (%s, 1, 'x', 'x')",
            (uuid4(),),
        )
        conn.rollback()
    ledger.execute(
        RecordDues(
            organization_code=BASE_A, period="2024-02", amount="25.00", received_on="2024-02-20"
        )
    )
    positions = raw.positions()
    assert gap not in positions and positions[-1] > gap
    trail.seal()
    assert trail.verify()["ok"] is True
    # Forging a row into that gap later is caught exactly there.
    raw.forge(gap, copy_of=positions[2])
    assert_bad_at(trail.verify(), gap, "event_inserted")


# --- the five tamperings the issue names -----------------------------------------------------


def test_one_flipped_payload_byte_is_found(trail: AuditTrail, raw: Raw):
    trail.seal()
    target = raw.positions()[5]
    raw.flip_byte(target, 17)
    assert_bad_at(trail.verify(), target, "event_changed")


def test_a_deleted_event_row_is_found(trail: AuditTrail, raw: Raw):
    trail.seal()
    target = raw.positions()[4]
    raw.delete(target)
    assert_bad_at(trail.verify(), target, "event_missing")


def test_a_forged_row_inserted_among_sealed_ones_is_found(trail: AuditTrail, raw: Raw):
    trail.seal()
    positions = raw.positions()
    after = positions[6]
    raw.shift_up_after(after)
    raw.forge(after + 1, copy_of=positions[3])
    assert_bad_at(trail.verify(), after + 1, "event_changed")


def test_two_swapped_payloads_are_found(trail: AuditTrail, raw: Raw):
    trail.seal()
    positions = raw.positions()
    first, second = positions[3], positions[8]
    state_first, state_second = raw.state(first), raw.state(second)
    raw.set_state(first, state_second)
    raw.set_state(second, state_first)
    report = trail.verify()
    assert_bad_at(report, first, "event_changed")
    assert second in {p["position"] for p in report["problems"]}


def test_deleting_the_newest_events_after_a_seal_is_found(trail: AuditTrail, raw: Raw):
    seal = trail.seal()
    positions = raw.positions()
    keep = positions[-4]
    raw.delete_after(keep)
    report = trail.verify()
    assert_bad_at(report, keep + 1, "event_missing")
    assert str(seal["position"]) in json.dumps(report["problems"])


# --- the audit tables themselves -------------------------------------------------------------


def truncate(raw: Raw, keep: int) -> None:
    """Deletes the newest events with their audit_chain and audit_seals rows, as an intruder
    covering their tracks would."""
    raw.delete_after(keep)
    raw.run("DELETE FROM audit_chain WHERE position > ?", (keep,))
    raw.run("DELETE FROM audit_seals WHERE position > ?", (keep,))


def test_truncation_with_its_chain_and_seal_rows_is_found_by_the_exported_seals(
    trail: AuditTrail, ledger: Ledger, raw: Raw, tmp_path
):
    early = trail.seal()
    for month in ("2024-02", "2024-03"):
        ledger.execute(
            RecordDues(
                organization_code=BASE_B, period=month, amount="12.50", received_on=f"{month}-21"
            )
        )
    keep = raw.positions()[-3]
    assert keep > early["position"]
    last = trail.seal()
    seal_file = tmp_path / "kept-outside.jsonl"
    assert trail.export_seals(seal_file) == (2, 0)
    truncate(raw, keep)
    # The store alone cannot say what was cut, but it must not say ok either.
    alone = trail.verify()
    assert alone["ok"] is False
    assert "seal_deleted" in {p["kind"] for p in alone["problems"]}
    # Against the seals kept outside: the first missing position is named.
    report = trail.verify(seal_file=seal_file)
    assert_bad_at(report, keep + 1, "seal_mismatch")
    assert "seal_missing" in {p["kind"] for p in report["problems"]}
    assert "removed" in report["reason"]
    assert report["verified_through"] == early["position"]
    assert report["sealed_through"] == last["position"] > keep
    # Exporting again keeps the seal the store lost, so the copy stays a proof.
    assert trail.export_seals(seal_file) == (2, 1)
    kept = [json.loads(line) for line in seal_file.read_text().splitlines()]
    assert last["signature"] in {s["signature"] for s in kept}


def test_truncation_of_every_seal_with_its_counter_reset_is_not_ok(
    trail: AuditTrail, raw: Raw, backend: Backend, tmp_path
):
    trail.seal()
    keep = raw.positions()[-4]
    seal_file = tmp_path / "kept-outside.jsonl"
    trail.export_seals(seal_file)
    truncate(raw, keep)
    raw.run("DELETE FROM audit_seals")
    if backend.kind == "sqlite":
        raw.run("DELETE FROM sqlite_sequence WHERE name = 'audit_seals'")
    else:
        raw.run("SELECT setval(pg_get_serial_sequence('audit_seals', 'seal_id'), 1, false)")
    alone = trail.verify()
    assert alone["ok"] is False
    assert [p["kind"] for p in alone["problems"]] == ["no_seal"]
    assert "no seal" in alone["reason"]
    assert_bad_at(trail.verify(seal_file=seal_file), keep + 1, "seal_mismatch")


def test_an_edited_seal_fails_its_signature(trail: AuditTrail, raw: Raw):
    seal = trail.seal()
    raw.run("UPDATE audit_seals SET chain_hash = ? WHERE seal_id = ?", ("00" * 32, seal["seal_id"]))
    report = trail.verify()
    assert report["ok"] is False
    assert report["first_bad_position"] == seal["position"]
    assert report["problems"][0]["kind"] == "seal_invalid"


def test_a_seal_signed_with_another_key_is_refused(
    trail: AuditTrail, backend: Backend, raw: Raw, tmp_path
):
    seal = trail.seal()
    impostor_settings = backend.settings.model_copy(update={"audit_key_file": tmp_path / "x.key"})
    impostor = load_signing_key(impostor_settings, create=True)
    forged = make_seal(
        impostor,
        position=seal["position"],
        event_count=seal["event_count"],
        chain_hash=bytes.fromhex(seal["chain_hash"]),
        sealed_at=seal["sealed_at"],
    )
    raw.run(
        "UPDATE audit_seals SET public_key = ?, signature = ?",
        (forged["public_key"], forged["signature"]),
    )
    report = trail.verify()
    assert report["ok"] is False
    assert "not this deployment's audit key" in report["reason"]


def test_an_altered_chain_link_is_blamed_on_the_chain_table(trail: AuditTrail, raw: Raw):
    trail.seal()
    target = raw.positions()[2]
    raw.run("UPDATE audit_chain SET link = ? WHERE position = ?", (b"\x07" * 32, target))
    report = trail.verify()
    assert report["ok"] is False
    assert report["first_bad_position"] == target
    assert report["problems"][0]["kind"] == "chain_table_altered"


def test_a_rewritten_chain_table_still_fails_at_the_seal(trail: AuditTrail, raw: Raw):
    first = trail.seal()
    trail.ledger.execute(
        RecordDues(
            organization_code=BASE_B, period="2024-02", amount="12.50", received_on="2024-02-21"
        )
    )
    trail.seal()
    target = raw.positions()[-1]
    raw.flip_byte(target, 3)
    rows = raw.run(
        "SELECT {pos}, originator_id, originator_version, topic, state FROM {t} ORDER BY {pos}"
    )
    raw.run("DELETE FROM audit_chain")
    for position, link in chain_links(rows):
        raw.run(
            "INSERT INTO audit_chain (position, ordinal, link) VALUES (?, 0, ?)", (position, link)
        )
    report = trail.verify()
    assert report["ok"] is False
    assert report["problems"][0]["kind"] == "seal_mismatch"
    assert first["position"] < report["first_bad_position"] <= target
    assert report["verified_through"] == first["position"]


def test_sealing_refuses_to_vouch_for_rows_that_contradict_a_seal(trail: AuditTrail, raw: Raw):
    seal = trail.seal()
    target = raw.positions()[3]
    raw.run("DELETE FROM audit_chain WHERE position >= ?", (target,))
    raw.flip_byte(target, 9)
    with pytest.raises(ChainContradictsSeal) as refused:
        trail.seal()
    assert refused.value.position == seal["position"]
    assert len(trail.seals()) == 1


# --- trust that does not rest on the database alone -------------------------------------------


def test_a_store_with_events_and_no_seal_is_not_proven(trail: AuditTrail):
    report = trail.verify()
    assert report["ok"] is False
    assert [p["kind"] for p in report["problems"]] == ["no_seal"]
    assert report["first_bad_position"] is None and report["verified_through"] == 0
    assert "no seal" in report["reason"]


def test_an_empty_store_has_nothing_to_prove(ledger: Ledger):
    report = AuditTrail(ledger).verify()
    assert report["ok"] is True and "no events" in report["reason"]


def verify_with(settings) -> dict[str, Any]:
    ledger = Ledger(settings)
    try:
        return AuditTrail(ledger).verify()
    finally:
        ledger.close()


def test_seals_are_trusted_only_by_the_key_configured_outside(
    trail: AuditTrail, backend: Backend, tmp_path
):
    trail.seal()
    assert trail.verify()["ok"] is True
    unconfigured = backend.settings.model_copy(update={"audit_public_key": None})
    report = verify_with(unconfigured)
    assert report["ok"] is False and report["verified_through"] == 0
    assert [p["kind"] for p in report["problems"]] == ["no_public_key"]
    assert "LEDGER_AUDIT_PUBLIC_KEY" in report["reason"]
    # A seal signed by the key the database names, but not the configured one, proves nothing.
    other = load_signing_key(
        backend.settings.model_copy(update={"audit_key_file": tmp_path / "other.key"}), create=True
    )
    elsewhere = backend.settings.model_copy(update={"audit_public_key": public_key_text(other)})
    refused = verify_with(elsewhere)
    assert refused["ok"] is False and "not this deployment's audit key" in refused["reason"]
    # Either of two configured keys (a key being replaced) is trusted; a file serves too.
    both = f"{public_key_text(other)}, {backend.settings.audit_public_key}"
    key_file = tmp_path / "audit.pub"
    key_file.write_text(both + "\n")
    by_file = backend.settings.model_copy(
        update={"audit_public_key": None, "audit_public_key_file": key_file}
    )
    assert verify_with(by_file)["ok"] is True
    malformed = backend.settings.model_copy(update={"audit_public_key": "not-a-key"})
    bad = verify_with(malformed)
    assert bad["ok"] is False and bad["problems"][0]["kind"] == "public_key_invalid"


def test_the_verification_answer_is_cached_per_store_and_position(backend: Backend, tmp_path):
    """Two stores with the same history and head position: one tampered. Each answers for
    itself, and a store's answer changes once anything is written or sealed."""
    stores = [backend]
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    stores.append(Backend(backend.kind, second_dir))
    try:
        trails = []
        for store in stores:
            ledger = store.open()
            build_deployment(ledger)
            trails.append(AuditTrail(ledger))
            trails[-1].seal()
        assert trails[0].store.state().head_position == trails[1].store.state().head_position
        raw = Raw(stores[1])
        try:
            target = raw.positions()[4]
            raw.flip_byte(target, 20)
        finally:
            raw.close()
        assert trails[0].verification()["ok"] is True
        tampered = trails[1].verification()
        assert tampered["ok"] is False and tampered["cached"] is False
        assert trails[1].verification()["cached"] is True
        # A new seal (no new event) is a change too.
        trails[0].seal()
        assert trails[0].verification()["cached"] is False
        trails[0].ledger.execute(
            RecordDues(
                organization_code=BASE_B, period="2024-02", amount="12.50", received_on="2024-02-21"
            )
        )
        assert trails[0].verification()["cached"] is False
    finally:
        stores[1].close()


def test_the_audit_store_reads_the_rows_the_recorder_reads(trail: AuditTrail, ledger: Ledger):
    """The audit store reads the events table itself, in the one transaction that also reads
    the chain and the seals (one consistent snapshot, which the recorder's reads cannot share):
    the rows it reads are the recorder's, in the same order."""
    library = [
        (n.id, n.originator_id.hex, n.originator_version, n.topic, bytes(n.state))
        for n in ledger.recorder.select_notifications(start=1, limit=100_000)
    ]
    assert len(library) == ledger.head_position() > 10
    with trail.store.snapshot() as snapshot:
        ours = [
            (int(p), UUID(str(i)).hex, int(v), str(t), bytes(s)) for p, i, v, t, s in snapshot.rows
        ]
        assert snapshot.head_position == library[-1][0]
    assert ours == library
