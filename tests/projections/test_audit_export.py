"""Sealed exports of the log (`ledger export`) and their offline verification, on both stores."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from projections.audit.chain import chain_links
from projections.audit.export import (
    MANIFEST_NAME,
    ExportDamaged,
    ExportError,
    export_log,
    file_sha256,
    verify_export,
)
from projections.audit.trail import AuditTrail
from service.application import Ledger
from service.commands import RecordDues
from tests.conftest import Backend
from tests.projections.test_audit import (
    BASE_A,
    MOBILE_1,
    PERSON_1,
    PERSON_2,
    PERSON_3,
    Raw,
    build_deployment,
)

LEDGER = str(Path(sys.executable).with_name("ledger"))
PERSONAL = (PERSON_1, PERSON_2, PERSON_3, MOBILE_1, "13900001111", "张三", "欧阳娜娜", "李四")
PER_SEGMENT = 4


def trusted(backend: Backend) -> set[str]:
    assert backend.settings.audit_public_key is not None
    return {backend.settings.audit_public_key}


def sealed_export(ledger: Ledger, out: Path) -> dict[str, Any]:
    build_deployment(ledger)
    AuditTrail(ledger).seal()
    export_log(ledger, out, segment_events=PER_SEGMENT)
    return manifest_of(out)


def manifest_of(out: Path) -> dict[str, Any]:
    return json.loads((out / MANIFEST_NAME).read_text())


def more_dues(ledger: Ledger, count: int) -> None:
    for month in range(1, count + 1):
        ledger.execute(
            RecordDues(
                organization_code=BASE_A,
                period=f"2024-{month + 1:02d}",
                amount="3.00",
                received_on=f"2024-{month + 1:02d}-10",
            )
        )


def refused(out: Path, backend: Backend) -> ExportDamaged:
    with pytest.raises(ExportDamaged) as caught:
        verify_export(out, trusted(backend))
    return caught.value


def test_an_export_holds_the_log_as_stored_and_verifies_offline(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    out = tmp_path / "export"
    manifest = sealed_export(ledger, out)
    head = ledger.head_position()
    segments = manifest["segments"]
    assert sum(s["rows"] for s in segments) == len(Raw(backend).positions())
    assert all(s["rows"] == PER_SEGMENT for s in segments[:-1])
    assert [s["file"] for s in segments] == sorted(p.name for p in out.glob("*.parquet"))
    assert segments[0]["file"] == f"events-000000000001-{segments[0]['through']:012d}.parquet"
    for before, after in itertools.pairwise(segments):
        assert after["after"] == before["through"]
    assert manifest["through"] == head
    seal = AuditTrail(ledger).latest_seal()
    assert seal is not None
    assert {s["seal_id"] for s in segments} == {seal["seal_id"]}
    assert manifest["seals"][str(seal["seal_id"])]["signature"] == seal["signature"]
    for segment in segments:
        assert file_sha256(out / segment["file"]) == segment["sha256"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_NAME, *(s["file"] for s in segments)]
    )  # no temporary file is left behind

    # The rows are the store's rows, byte for byte, and the links the store's chain.
    raw = Raw(backend)
    try:
        positions = raw.positions()
        stored = {p: raw.state(p) for p in positions}
    finally:
        raw.close()
    rows = [row for segment in segments for row in pq.read_table(out / segment["file"]).to_pylist()]
    assert [r["position"] for r in rows] == positions
    assert all(r["payload"] == stored[r["position"]] for r in rows)
    links = dict(
        chain_links(
            (r["position"], r["stream_id"], r["version"], r["topic"], r["payload"]) for r in rows
        )
    )
    assert all(links[r["position"]] == r["chain_link"] for r in rows)
    assert links[seal["position"]].hex() == seal["chain_hash"]
    assert all(r["recorded_at"] is not None for r in rows)
    # Recorded times: read from each payload's timestamp (a command's events share a moment).
    assert {r["recorded_at"].date() for r in rows} <= {
        datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=d) for d in (0, 1)
    }

    report = verify_export(out, trusted(backend))
    assert report["ok"] is True
    assert report["events_checked"] == len(positions)
    assert report["proven_through"] == head
    assert report["unsealed_segments"] == []


def test_exports_go_on_from_the_manifest_and_new_seals_cover_old_segments(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    out = tmp_path / "export"
    first = sealed_export(ledger, out)
    kept = {s["file"]: (out / s["file"]).read_bytes() for s in first["segments"]}
    more_dues(ledger, 5)

    result = export_log(ledger, out, segment_events=PER_SEGMENT)
    manifest = manifest_of(out)
    added = ledger.recorder.select_notifications(
        start=first["through"], limit=10_000, inclusive_of_start=False
    )
    assert result.events_written == len(added) >= 5
    assert manifest["through"] == ledger.head_position()
    assert manifest["segments"][: len(first["segments"])] == first["segments"]
    assert {name: (out / name).read_bytes() for name in kept} == kept  # never rewritten
    new = manifest["segments"][len(first["segments"]) :]
    assert new and new[0]["after"] == first["through"]
    assert all(s["seal_id"] is None for s in new)
    report = verify_export(out, trusted(backend))
    assert report["proven_through"] == first["through"]
    assert report["unsealed_segments"] == [s["file"] for s in new]

    # Sealing, then exporting again, writes no segment and names the seal for the new ones.
    AuditTrail(ledger).seal()
    again = export_log(ledger, out)
    assert again.segments_written == []
    assert again.seals_attached == len(new)
    report = verify_export(out, trusted(backend))
    assert report["proven_through"] == ledger.head_position()
    assert report["unsealed_segments"] == []

    # --after must continue the export in the directory, not leave a gap or overlap it.
    with pytest.raises(ExportError, match="overlap"):
        export_log(ledger, out, after=1)
    with pytest.raises(ExportError, match="gap"):
        export_log(ledger, out, after=ledger.head_position() + 5)


def test_an_export_after_a_position_starts_there(ledger: Ledger, backend: Backend, tmp_path: Path):
    build_deployment(ledger)
    AuditTrail(ledger).seal()
    start = Raw(backend)
    try:
        middle = start.positions()[5]
    finally:
        start.close()
    out = tmp_path / "tail"
    export_log(ledger, out, after=middle, segment_events=PER_SEGMENT)
    manifest = manifest_of(out)
    assert manifest["starts_after"] == middle
    assert manifest["segments"][0]["file"].startswith(f"events-{middle + 1:012d}-")
    assert verify_export(out, trusted(backend))["proven_through"] == ledger.head_position()
    with pytest.raises(ExportError, match="not an event of the audit chain"):
        export_log(ledger, tmp_path / "nowhere", after=ledger.head_position() + 100)


def test_a_flipped_byte_is_refused_naming_the_segment(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    out = tmp_path / "export"
    segments = sealed_export(ledger, out)["segments"]
    target = out / segments[1]["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    failure = refused(out, backend)
    assert failure.segment == segments[1]["file"]
    assert "SHA-256" in failure.reason


def test_a_truncated_segment_is_refused_naming_it(ledger: Ledger, backend: Backend, tmp_path):
    out = tmp_path / "export"
    segments = sealed_export(ledger, out)["segments"]
    target = out / segments[-1]["file"]
    target.write_bytes(target.read_bytes()[:-100])
    failure = refused(out, backend)
    assert failure.segment == segments[-1]["file"]
    assert "truncated" in failure.reason


def test_a_removed_segment_is_refused_naming_it(ledger: Ledger, backend: Backend, tmp_path):
    out = tmp_path / "export"
    manifest = sealed_export(ledger, out)
    segments = manifest["segments"]
    (out / segments[1]["file"]).unlink()
    failure = refused(out, backend)
    assert failure.segment == segments[1]["file"]
    assert "missing" in failure.reason

    # Removed from the manifest too: the next segment names the gap.
    manifest["segments"] = [segments[0], *segments[2:]]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    failure = refused(out, backend)
    assert failure.segment == segments[2]["file"]
    assert f"positions {segments[0]['through'] + 1} to {segments[1]['through']} are missing" in (
        failure.reason
    )


def test_a_segment_from_another_export_is_refused_naming_it(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    out = tmp_path / "export"
    segments = sealed_export(ledger, out)["segments"]
    # Another deployment with the same history: the same positions, other bytes.
    (tmp_path / "other").mkdir()
    other_backend = Backend(backend.kind, tmp_path / "other")
    try:
        other_out = tmp_path / "other-export"
        other = sealed_export(other_backend.open(), other_out)["segments"]
    finally:
        other_backend.close()
    name = segments[1]["file"]
    assert other[1]["file"] == name
    shutil.copyfile(other_out / name, out / name)
    failure = refused(out, backend)
    assert failure.segment == name
    assert "SHA-256" in failure.reason or "bytes" in failure.reason

    # With the manifest edited to match the foreign file, the chain still refuses it.
    manifest = manifest_of(out)
    manifest["segments"][1] = {**other[1], "seal_id": manifest["segments"][1]["seal_id"]}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    failure = refused(out, backend)
    assert failure.segment == name
    assert "chain" in failure.reason

    # And exporting into a directory that holds another store's export is refused.
    with pytest.raises(ExportError, match="another store"):
        export_log(ledger, other_out)


def test_verification_needs_the_public_key_and_a_seal(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    build_deployment(ledger)
    out = tmp_path / "export"
    export_log(ledger, out, segment_events=PER_SEGMENT)  # no seal yet
    assert manifest_of(out)["seals"] == {}
    with pytest.raises(ExportDamaged, match="no seal covers any segment"):
        verify_export(out, trusted(backend))
    AuditTrail(ledger).seal()
    export_log(ledger, out)
    with pytest.raises(ExportDamaged, match="no audit public key"):
        verify_export(out, set())
    other_key = "ZDx2rSLyXHd5RlKwM7WPVt+3j6qDzYm9kH6cVfJ0tn8="
    with pytest.raises(ExportDamaged, match="not this deployment's audit key"):
        verify_export(out, {other_key})
    assert verify_export(out, trusted(backend))["ok"] is True


def test_no_personal_data_is_in_clear(ledger: Ledger, tmp_path: Path):
    out = tmp_path / "export"
    manifest = sealed_export(ledger, out)
    files = [out / MANIFEST_NAME, *(out / s["file"] for s in manifest["segments"])]
    blob = b"".join(path.read_bytes() for path in files)
    values: list[str] = []
    for segment in manifest["segments"]:
        for row in pq.read_table(out / segment["file"]).to_pylist():
            for value in row.values():
                if isinstance(value, bytes):
                    values.append(value.decode("utf-8", errors="ignore"))
                    values.append(value.decode("utf-16-le", errors="ignore"))
                else:
                    values.append(str(value))
    text = "\n".join(values)
    for secret in PERSONAL:
        assert secret.encode() not in blob, secret
        assert secret not in text, secret
    assert len(values) > 0


def run_ledger(backend: Backend, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    settings = backend.settings
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_ENCRYPTION_KEY": settings.encryption_key,
        "LEDGER_AUDIT_KEY_FILE": str(settings.audit_key_file),
        "LEDGER_AUDIT_PUBLIC_KEY": settings.audit_public_key or "",
        **extra_env,
    }
    return subprocess.run(
        [LEDGER, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=backend.tmp_path,
        check=False,
    )


def test_the_commands_export_and_verify_offline(ledger: Ledger, backend: Backend, tmp_path):
    build_deployment(ledger)
    AuditTrail(ledger).seal()
    out = tmp_path / "export"
    made = run_ledger(backend, "export", "--out", str(out), "--segment-events", "5")
    assert made.returncode == 0, made.stderr
    assert f"through position {ledger.head_position()}" in made.stdout
    # Offline: the database the settings name does not exist.
    offline = {"LEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    verified = run_ledger(backend, "audit", "verify", "--export", str(out), **offline)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok: ")
    nothing_new = run_ledger(backend, "export", "--out", str(out))
    assert nothing_new.returncode == 0, nothing_new.stderr
    assert nothing_new.stdout.startswith("0 events in 0 new segment(s)")

    name = manifest_of(out)["segments"][0]["file"]
    data = bytearray((out / name).read_bytes())
    data[200] ^= 0x01
    (out / name).write_bytes(bytes(data))
    failed = run_ledger(backend, "audit", "verify", "--export", str(out), **offline)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"ledger: error: export verification failed: segment {name}: its SHA-256 is not the "
        "manifest's (altered, truncated or from another export: 分段被篡改)"
    ]
    as_json = run_ledger(backend, "audit", "verify", "--export", str(out), "--json", **offline)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "ok": False,
        "segment": name,
        "reason": "its SHA-256 is not the manifest's (altered, truncated or from another "
        "export: 分段被篡改)",
    }
    gap = run_ledger(backend, "export", "--out", str(out), "--after", "1")
    assert gap.returncode == 1
    assert "would overlap it" in gap.stderr


def test_a_damaged_store_is_not_exported(ledger: Ledger, backend: Backend, tmp_path: Path):
    build_deployment(ledger)
    AuditTrail(ledger).seal()
    raw = Raw(backend)
    try:
        positions = raw.positions()
        raw.flip_byte(positions[6], 11)
        with pytest.raises(ExportError, match=f"event at position {positions[6]} does not match"):
            export_log(ledger, tmp_path / "changed", segment_events=PER_SEGMENT)
    finally:
        raw.close()
    out = tmp_path / "changed"
    written = manifest_of(out)["segments"]
    assert written and written[-1]["through"] < positions[6]  # the segments before it
    # What was written is consistent, but the seal lies beyond it: nothing proves it yet.
    with pytest.raises(ExportDamaged, match="no seal covers any segment"):
        verify_export(out, trusted(backend))


def test_a_row_the_chain_never_reached_is_not_exported(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    build_deployment(ledger)
    AuditTrail(ledger).seal()
    raw = Raw(backend)
    try:
        target = raw.positions()[4]
        raw.run(f"DELETE FROM audit_chain WHERE position = {target}")
    finally:
        raw.close()
    with pytest.raises(ExportError, match=f"position {target} was never chained"):
        export_log(ledger, tmp_path / "forged", segment_events=PER_SEGMENT)


def test_an_empty_store_exports_nothing_and_verifies(ledger: Ledger, backend: Backend, tmp_path):
    out = tmp_path / "empty"
    result = export_log(ledger, out)
    assert result.segments_written == []
    assert manifest_of(out)["segments"] == []
    report = verify_export(out, trusted(backend))
    assert (report["ok"], report["events_checked"]) == (True, 0)
