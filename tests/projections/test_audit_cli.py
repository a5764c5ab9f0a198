"""`ledger audit seal` and `ledger audit verify`, run as the installed console script."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from service.application import Ledger
from tests.conftest import Backend
from tests.projections.test_audit import Raw, build_deployment

LEDGER = str(Path(sys.executable).with_name("ledger"))


def run_ledger(backend: Backend, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    settings = backend.settings
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_ENCRYPTION_KEY": settings.encryption_key,
        "LEDGER_AUDIT_KEY_FILE": str(settings.audit_key_file),
        "LEDGER_AUDIT_PUBLIC_KEY": settings.audit_public_key,
        **extra_env,
    }
    return subprocess.run(
        [LEDGER, "audit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=backend.tmp_path,
        check=False,
    )


def test_seal_then_verify_then_catch_tampering(ledger: Ledger, backend: Backend, tmp_path: Path):
    build_deployment(ledger)
    seal_file = tmp_path / "kept-by-auditors.jsonl"
    sealed = run_ledger(backend, "seal", "--append-to", str(seal_file))
    assert sealed.returncode == 0, sealed.stderr
    seal = json.loads(sealed.stdout.strip().splitlines()[-1])
    assert json.loads(seal_file.read_text()) == seal
    assert seal["position"] == ledger.head_position()

    clean = run_ledger(backend, "verify", "--seal-file", str(seal_file), "--json")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["ok"] is True

    raw = Raw(backend)
    try:
        target = raw.positions()[7]
        raw.flip_byte(target, 11)
    finally:
        raw.close()
    failed = run_ledger(backend, "verify")
    assert failed.returncode == 1
    assert f"FAILED at position {target}" in failed.stdout
    reason_lines = [line for line in failed.stderr.splitlines() if line.startswith("ledger: ")]
    assert reason_lines == [reason_lines[0]]
    assert f"failed at position {target}" in reason_lines[0]
    as_json = json.loads(run_ledger(backend, "verify", "--json").stdout)
    assert as_json["first_bad_position"] == target


def test_an_unreadable_seal_file_is_a_one_line_failure(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    bad = tmp_path / "seals.json"
    bad.write_text("{not json")
    result = run_ledger(backend, "verify", "--seal-file", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("ledger: error: ")
    assert "neither JSON nor JSON Lines" in result.stderr


def test_the_signing_key_can_come_from_settings(ledger: Ledger, backend: Backend):
    private = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    configured = base64.b64encode(private).decode()
    key_file_before = backend.settings.audit_key_file.read_bytes()
    build_deployment(ledger)
    sealed = run_ledger(backend, "seal", LEDGER_AUDIT_SIGNING_KEY=configured)
    assert sealed.returncode == 0, sealed.stderr
    seal = json.loads(sealed.stdout.strip().splitlines()[-1])
    expected = (
        Ed25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    assert base64.b64decode(seal["public_key"]) == expected
    assert backend.settings.audit_key_file.read_bytes() == key_file_before  # not used
    public = run_ledger(backend, "public-key", LEDGER_AUDIT_SIGNING_KEY=configured)
    assert public.stdout.strip() == seal["public_key"]
    # Verified against that public key it passes; against the configured one (the key
    # file's) the seal proves nothing.
    assert run_ledger(backend, "verify", LEDGER_AUDIT_PUBLIC_KEY=seal["public_key"]).returncode == 0
    refused = run_ledger(backend, "verify")
    assert refused.returncode == 1
    assert "not this deployment's audit key" in refused.stderr


def test_a_malformed_signing_key_is_a_one_line_failure(ledger: Ledger, backend: Backend):
    result = run_ledger(backend, "seal", LEDGER_AUDIT_SIGNING_KEY="not-a-key")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ledger: error: LEDGER_AUDIT_SIGNING_KEY is not base64"
    ]


def test_sealing_over_contradicted_rows_is_refused_in_one_line(ledger: Ledger, backend: Backend):
    build_deployment(ledger)
    assert run_ledger(backend, "seal").returncode == 0
    raw = Raw(backend)
    try:
        target = raw.positions()[2]
        raw.run("DELETE FROM audit_chain WHERE position >= ?", (target,))
        raw.flip_byte(target, 5)
    finally:
        raw.close()
    refused = run_ledger(backend, "seal")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "refusing to seal" in refused.stderr


def test_a_store_with_events_and_no_seal_is_not_proven(ledger: Ledger, backend: Backend):
    build_deployment(ledger)
    result = run_ledger(backend, "verify")
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED: the store holds events but no seal")
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("ledger: error: audit verification failed: the store holds events but no seal")
    )


def test_without_a_configured_public_key_nothing_is_proven(ledger: Ledger, backend: Backend):
    build_deployment(ledger)
    assert run_ledger(backend, "seal").returncode == 0
    result = run_ledger(backend, "verify", LEDGER_AUDIT_PUBLIC_KEY="")
    assert result.returncode == 1
    assert "no audit public key is configured" in result.stderr
    # The operator gets the key to configure from the signing key.
    public = run_ledger(backend, "public-key")
    assert public.returncode == 0, public.stderr
    assert public.stdout.strip() == backend.settings.audit_public_key
    key_file = backend.tmp_path / "audit.pub"
    key_file.write_text(public.stdout)
    by_file = run_ledger(
        backend, "verify", LEDGER_AUDIT_PUBLIC_KEY="", LEDGER_AUDIT_PUBLIC_KEY_FILE=str(key_file)
    )
    assert by_file.returncode == 0, by_file.stderr


def test_exported_seals_catch_a_truncation_the_store_hides(
    ledger: Ledger, backend: Backend, tmp_path: Path
):
    build_deployment(ledger)
    assert run_ledger(backend, "seal").returncode == 0
    head = ledger.head_position()
    seal_file = tmp_path / "elsewhere" / "seals.jsonl"
    seal_file.parent.mkdir()
    exported = run_ledger(backend, "export-seals", str(seal_file))
    assert exported.returncode == 0, exported.stderr
    assert "1 seals in" in exported.stderr
    assert [json.loads(line)["position"] for line in seal_file.read_text().splitlines()] == [head]
    raw = Raw(backend)
    try:
        keep = raw.positions()[-3]
        raw.delete_after(keep)
        raw.run("DELETE FROM audit_chain WHERE position > ?", (keep,))
        raw.run("DELETE FROM audit_seals WHERE position > ?", (keep,))
    finally:
        raw.close()
    alone = run_ledger(backend, "verify")
    assert alone.returncode == 1
    against_copy = run_ledger(backend, "verify", "--seal-file", str(seal_file))
    assert against_copy.returncode == 1
    assert f"FAILED at position {keep + 1}" in against_copy.stdout
    # Exporting again keeps the seal the store lost.
    again = run_ledger(backend, "export-seals", str(seal_file))
    assert again.returncode == 0 and "no longer in the store" in again.stderr
    assert len(seal_file.read_text().splitlines()) == 1
