"""AuditTrail.trace(): one stream's events with their place in the chain, as the console's
voucher page shows them, on both stores, intact and tampered with behind the ledger's back."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from projections.audit.trail import AuditTrail
from service.application import Ledger
from service.commands import RecordExpense
from tests.conftest import Backend
from tests.projections.test_audit import BASE_A, Raw, build_deployment


@pytest.fixture
def trail(ledger: Ledger) -> AuditTrail:
    build_deployment(ledger)
    return AuditTrail(ledger)


@pytest.fixture
def tamper(backend: Backend) -> Iterator[Raw]:
    handle = Raw(backend)
    yield handle
    handle.close()


def _expense(ledger: Ledger, amount: str = "1.00") -> UUID:
    result = ledger.execute(
        RecordExpense(
            organization_code=BASE_A,
            account_code="501",
            amount=amount,
            earmarked=False,
            description="职工活动",
            paid_on="2024-02-25",
        )
    )
    return UUID(result.body["voucher_id"])


def test_a_voucher_traced_before_and_after_its_seal(trail: AuditTrail, ledger: Ledger) -> None:
    voucher = _expense(ledger)
    unsealed = trail.trace(voucher)
    assert len(unsealed) == 1
    assert unsealed[0]["chain"] == {
        "chained": False,
        "link_ok": False,
        "link": None,
        "seal": None,
        "seal_ok": False,
        "seal_fault": None,
    }
    seal = trail.seal()
    assert seal is not None
    [event] = trail.trace(voucher)
    assert event["type"].startswith("ledger:Voucher")
    assert event["position"] <= seal["position"]
    assert event["chain"]["chained"] and event["chain"]["link_ok"]
    assert event["chain"]["seal"]["position"] == seal["position"]
    assert event["chain"]["seal_ok"] is True
    # A later voucher is chained by the next seal only; the earlier one keeps its seal.
    later = _expense(ledger, "2.00")
    second = trail.seal()
    assert second is not None
    assert trail.trace(later)[0]["chain"]["seal"]["position"] == second["position"]
    assert trail.trace(voucher)[0]["chain"]["seal"]["position"] == seal["position"]


def test_a_tampered_row_fails_its_link(trail: AuditTrail, ledger: Ledger, tamper: Raw) -> None:
    voucher = _expense(ledger)
    assert trail.seal() is not None
    [event] = trail.trace(voucher)
    tamper.flip_byte(event["position"], 40)
    [tampered] = trail.trace(voucher)
    assert tampered["chain"]["chained"] is True
    assert tampered["chain"]["link_ok"] is False
    assert trail.verify()["first_bad_position"] == event["position"]


def test_an_unknown_stream_has_no_events(trail: AuditTrail) -> None:
    assert trail.trace(UUID(int=7)) == []


def test_a_seal_without_a_public_key_to_check_it_says_so(trail: AuditTrail, ledger: Ledger) -> None:
    voucher = _expense(ledger)
    assert trail.seal() is not None
    trail.settings = trail.settings.model_copy(
        update={"audit_public_key": None, "audit_public_key_file": None}
    )
    [event] = trail.trace(voucher)
    assert event["chain"]["link_ok"] is True  # the link needs no key
    assert event["chain"]["seal_ok"] is False
    assert "no audit public key is configured" in event["chain"]["seal_fault"]
