"""The registers on the read side: lists as of a date, the file following a transfer, payouts
and reversals, the assistance report against the ledger's 504/505, personal data encrypted in
the tables, and the live tables equal to a rebuild. Both stores."""

from __future__ import annotations

import datetime

import pytest

from projections.read_models.models import ReadModels
from service.commands import (
    AcceptTransfer,
    CloseHardshipFile,
    JoinMember,
    OpenHardshipFile,
    PaySubsidy,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RegisterModelWorker,
    ReverseVoucher,
    ReviewHardshipFile,
    RevokeModelWorker,
    StartTransfer,
)
from tests.projections.helpers import assert_equal_to_rebuild
from tests.service.scenario import found_tree, person

D = datetime.date


@pytest.fixture
def setup(ledger):
    tree = found_tree(ledger)
    rm = ReadModels(ledger)
    yield ledger, tree, rm
    rm.close()


def _join(ledger, org, n):
    return ledger.execute(
        JoinMember(
            id_number=person(n), name=f"困难{n}", organization_code=org, joined_on="2024-01-02"
        )
    ).body["member_id"]


def _open(ledger, member_id, on, category="relative", causes=("illness",)):
    return ledger.execute(
        OpenHardshipFile(
            member_id=member_id,
            category=category,
            causes=list(causes),
            household_size=3,
            monthly_income_per_head="610.00",
            opened_on=on,
        )
    ).body["file_id"]


def _pay(ledger, payer, member_id, programme, on, amount):
    return ledger.execute(
        PaySubsidy(
            payer_organization_code=payer,
            recipient={"member_id": member_id},
            programme=programme,
            amount=amount,
            earmarked=True,
            approval_ref="批-9",
            paid_on=on,
        )
    ).body["voucher_id"]


# Batches of one and three events: every register handler then reads rows of earlier batches
# (prefetched for the batch), alone or beside rows of its own batch.
@pytest.mark.parametrize("batch_events", [None, 1, 3])
def test_registers_on_the_read_side(setup, backend, batch_events):
    ledger, tree, rm = setup
    for org in (tree.base_a, tree.base_b):
        ledger.execute(
            RecordDues(
                organization_code=org, period="2025-01", amount="50000.00", received_on="2025-01-02"
            )
        )
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2025-01",
            payroll_total="1000000.00",
            amount="20000.00",
            channel="tax",
            received_on="2025-01-03",
        )
    )
    a1, a2, b1 = (
        _join(ledger, tree.base_a, 1),
        _join(ledger, tree.base_a, 2),
        _join(ledger, tree.base_b, 3),
    )
    f1 = _open(ledger, a1, "2024-02-01", "deep", ("illness", "unemployment"))
    f2 = _open(ledger, a2, "2025-03-01", "relative", ("education",))
    f3 = _open(ledger, b1, "2025-03-05", "sudden", ("accident",))
    ledger.execute(
        ReviewHardshipFile(
            file_id=f2,
            reviewed_on="2025-09-01",
            category="deep",
            household_size=5,
            monthly_income_per_head="400.00",
        )
    )
    ledger.execute(
        CloseHardshipFile(file_id=f3, closed_on="2025-10-01", reason="保险理赔到位,脱困")
    )
    worker = ledger.execute(
        RegisterModelWorker(
            id_number=person(2),
            name="困难2",
            honour="市级劳动模范",
            level="city",
            awarded_year=2020,
            organization_code=tree.county,
        )
    ).body["model_worker_id"]
    other = ledger.execute(
        RegisterModelWorker(
            id_number=person(9),
            name="退休劳模",
            honour="县级劳动模范",
            level="county",
            awarded_year=2010,
            organization_code=tree.county,
        )
    ).body["model_worker_id"]
    ledger.execute(RevokeModelWorker(model_worker_id=other, revoked_on="2025-04-01", reason="撤销"))
    _pay(ledger, tree.base_a, a1, "hardship", "2025-01-10", "800.00")
    _pay(ledger, tree.county, a1, "hardship", "2025-06-10", "1200.00")
    reversed_id = _pay(ledger, tree.base_a, a2, "hardship", "2025-04-10", "300.00")
    ledger.execute(
        ReverseVoucher(voucher_id=reversed_id, effective_on="2025-04-12", reason="重复发放")
    )
    _pay(ledger, tree.base_b, b1, "hardship", "2025-04-10", "500.00")
    _pay(ledger, tree.county, a2, "model_worker", "2025-05-01", "2000.00")
    _pay(ledger, tree.county, a2, "school", "2025-08-20", "1000.00")
    # An expense booked straight to 50404: in the ledger, not a payout to a person.
    ledger.execute(
        RecordExpense(
            organization_code=tree.county,
            account_code="50404",
            amount="99.00",
            earmarked=False,
            description="帮扶走访交通费",
            paid_on="2025-07-01",
        )
    )
    # The file follows a1 to base B.
    transfer = ledger.execute(
        StartTransfer(
            member_id=a1, to_organization_code=tree.base_b, effective_on="2025-11-01", reason_code=1
        )
    ).body["transfer_id"]
    ledger.execute(AcceptTransfer(member_id=a1, transfer_id=transfer, effective_on="2025-11-01"))
    rm.catch_up(batch_events=batch_events)  # None: the projector's own batch size

    on_a = rm.hardship_files(tree.base_a, as_of=D(2025, 12, 31))
    assert [f["file_id"] for f in on_a["items"]] == [f2]
    on_b = rm.hardship_files(tree.base_b, as_of=D(2025, 12, 31))
    assert {f["file_id"]: f["status"] for f in on_b["items"]} == {f1: "open", f3: "closed"}
    first = next(f for f in on_b["items"] if f["file_id"] == f1)
    assert first["opened_by"] == tree.base_a and first["name"] == "困难1"
    assert first["causes"] == ["illness", "unemployment"]
    assert first["overdue"] and first["review_due"] == "2025-02-01"
    # As of before the review, f2 was relative with its first figures.
    early = rm.hardship_files(tree.county, as_of=D(2025, 6, 30), scope="subtree", status="open")
    assert {f["file_id"]: f["category"] for f in early["items"]} == {
        f1: "deep",
        f2: "relative",
        f3: "sudden",
    }
    late = rm.hardship_files(tree.county, as_of=D(2025, 12, 31), scope="subtree", status="open")
    f2_late = next(f for f in late["items"] if f["file_id"] == f2)
    assert (f2_late["category"], f2_late["household_size"], f2_late["monthly_income_per_head"]) == (
        "deep",
        5,
        "400.00",
    )

    workers = rm.model_workers(tree.county, today=D(2025, 12, 31))
    assert {w["model_worker_id"]: w["status"] for w in workers["items"]} == {
        worker: "active",
        other: "revoked",
    }
    assert rm.model_workers(tree.county, today=D(2025, 12, 31), level="city")["total"] == 1

    report = rm.assistance(
        tree.county, date_from=D(2025, 1, 1), date_to=D(2025, 12, 31), scope="subtree"
    )
    hardship = report["hardship"]
    assert hardship["households_on_file"] == 2
    assert {c["category"]: c["households"] for c in hardship["by_category"]} == {
        "deep": 2,
        "relative": 0,
        "sudden": 0,
    }
    assert (hardship["opened"], hardship["reviewed"], hardship["closed"]) == (2, 1, 1)
    assert hardship["paid"] == "2500.00"  # 800 + 1200 + 300 - 300 + 500
    assert {h["file_id"]: h["amount"] for h in hardship["households"]} == {
        f1: "2000.00",
        f2: "0.00",
        f3: "500.00",
    }
    assert [o["file_id"] for o in hardship["overdue_reviews"]] == [f1]
    levels = {
        lv["level"]: (lv["model_workers"], lv["allowances"])
        for lv in report["model_workers"]["by_level"]
    }
    assert levels["city"] == (1, "2000.00") and levels["county"] == (0, "0.00")
    assert report["model_workers"]["revoked"] == 1
    checks = {
        c["account_code"]: (c["paid_to_persons"], c["ledger"]) for c in report["ledger_check"]
    }
    assert checks["50404"] == ("2500.00", "2599.00")
    assert checks["50503"] == ("2000.00", "2000.00")
    assert checks["504"] == ("3500.00", "3599.00")  # with 金秋助学 (50405)
    statement = rm.income_expenditure(
        tree.county, date_from=D(2025, 1, 1), date_to=D(2025, 12, 31), scope="subtree"
    )
    lines = {line["account_code"]: line["amount"] for line in statement["lines"]}
    assert lines["504"] == checks["504"][1] and lines["505"] == checks["505"][1]

    # Encrypted at rest: no cause, reason or name in the tables' bytes.
    with rm.store.reader() as cur:
        for table in ("hardship_files", "hardship_states", "model_workers"):
            cur.execute(f"SELECT * FROM {rm.tables.table(table)}")
            text = repr(cur.fetchall())
            for needle in ("illness", "保险理赔", "退休劳模", person(9)):
                assert needle not in text, (table, needle)
    assert_equal_to_rebuild(rm)


def test_two_changes_of_a_stored_row_in_one_batch(setup):
    """A record projected in an earlier batch, then changed twice in one batch: the second
    change builds on the first (the row is read back once per batch)."""
    ledger, tree, rm = setup
    member_id = _join(ledger, tree.base_a, 20)
    fields = dict(id_number=person(20), name="困难20", organization_code=tree.county)
    ledger.execute(
        RegisterModelWorker(honour="市级劳动模范", level="city", awarded_year=2018, **fields)
    )
    file_id = _open(ledger, member_id, "2024-03-01")
    rm.catch_up()
    ledger.execute(
        RegisterModelWorker(honour="全国劳动模范", level="national", awarded_year=2020, **fields)
    )
    ledger.execute(
        RegisterModelWorker(honour="县级劳动模范", level="county", awarded_year=2016, **fields)
    )
    ledger.execute(CloseHardshipFile(file_id=file_id, closed_on="2024-05-01", reason="脱困"))
    transfer = ledger.execute(
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_b,
            effective_on="2024-06-01",
            reason_code=1,
        )
    ).body["transfer_id"]
    ledger.execute(
        AcceptTransfer(member_id=member_id, transfer_id=transfer, effective_on="2024-06-01")
    )
    rm.catch_up()
    (worker,) = rm.model_workers(tree.county, today=D(2025, 1, 1))["items"]
    assert worker["level"] == "national" and worker["first_awarded_year"] == 2016
    (file,) = rm.hardship_files(tree.base_b, as_of=D(2025, 1, 1))["items"]
    assert file["status"] == "closed" and file["file_id"] == file_id
    assert_equal_to_rebuild(rm)
