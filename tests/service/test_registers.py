"""Hardship files and model workers through the Ledger, on SQLite and PostgreSQL; and payouts
that follow them. Every refusal is a named error that stores nothing."""

from __future__ import annotations

import threading

import pytest

from domain.errors import InvalidStatus, InvalidValue, NotAMember, NotFound
from domain.registers import FileAlreadyOpen, HardshipFile, NotHomeUnion, NotOnRegister
from service.application import Ledger
from service.commands import (
    AcceptTransfer,
    CloseHardshipFile,
    ExitMember,
    JoinMember,
    OpenHardshipFile,
    PaySubsidy,
    RecordDues,
    RegisterModelWorker,
    ReviewHardshipFile,
    RevokeModelWorker,
    StartTransfer,
)
from service.commands.registers import read_hardship_file
from tests.service.scenario import Tree, found_tree, person, refused


@pytest.fixture
def tree(ledger: Ledger) -> Tree:
    t = found_tree(ledger)
    for org in (t.base_a, t.base_b):
        ledger.execute(
            RecordDues(
                organization_code=org, period="2024-01", amount="9000.00", received_on="2024-01-05"
            )
        )
    return t


def join(ledger: Ledger, n: int, org: str) -> str:
    return ledger.execute(
        JoinMember(id_number=person(n), name="赵六", organization_code=org, joined_on="2024-01-02")
    ).body["member_id"]


def open_file(member_id: str, on: str = "2024-02-01", **extra) -> OpenHardshipFile:
    return OpenHardshipFile(
        member_id=member_id,
        category=extra.pop("category", "relative"),
        causes=extra.pop("causes", ["illness", "education"]),
        household_size=extra.pop("household_size", 4),
        monthly_income_per_head=extra.pop("monthly_income_per_head", "720.00"),
        opened_on=on,
        **extra,
    )


def pay(payer: str, member_id: str, programme: str, on: str, amount: str = "300.00") -> PaySubsidy:
    return PaySubsidy(
        payer_organization_code=payer,
        recipient={"member_id": member_id},
        programme=programme,
        amount=amount,
        earmarked=True,
        approval_ref="帮扶-2024-7",
        paid_on=on,
    )


def test_hardship_payouts_need_a_file_open_on_the_day(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    refused(
        ledger, NotOnRegister, ledger.execute, pay(tree.base_a, member_id, "hardship", "2024-02-10")
    )
    opened = ledger.execute(open_file(member_id)).body
    assert opened["status"] == "open" and opened["organization_code"] == tree.base_a
    assert opened["causes"] == ["illness", "education"]
    # Before the file was opened: still refused.
    refused(
        ledger, NotOnRegister, ledger.execute, pay(tree.base_a, member_id, "hardship", "2024-01-31")
    )
    paid = ledger.execute(pay(tree.base_a, member_id, "hardship", "2024-02-10")).body
    assert paid["details"]["hardship_file_id"] == opened["file_id"]
    # The county above may pay against the same file.
    funded = ledger.execute(pay(tree.base_a, member_id, "hardship", "2024-02-11", "10.00"))
    assert funded.body["details"]["hardship_file_id"] == opened["file_id"]
    reviewed = ledger.execute(
        ReviewHardshipFile(
            file_id=opened["file_id"],
            reviewed_on="2024-12-20",
            category="deep",
            household_size=4,
            monthly_income_per_head="500.00",
        )
    ).body
    assert (reviewed["category"], reviewed["reviews"], reviewed["review_due"]) == (
        "deep",
        1,
        "2025-12-20",
    )
    # Not closed on or before the day of a payout made against it.
    ledger.execute(pay(tree.base_a, member_id, "hardship", "2025-02-20", "1.00"))
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        CloseHardshipFile(file_id=opened["file_id"], closed_on="2025-02-20", reason="脱困"),
    )
    closed = ledger.execute(
        CloseHardshipFile(file_id=opened["file_id"], closed_on="2025-03-01", reason="子女就业,脱困")
    ).body
    assert closed["status"] == "closed" and closed["closed_on"] == "2025-03-01"
    refused(
        ledger, NotOnRegister, ledger.execute, pay(tree.base_a, member_id, "hardship", "2025-03-01")
    )
    # A back-dated payout inside the file's life is still valid.
    back = ledger.execute(pay(tree.base_a, member_id, "hardship", "2025-02-28", "5.00")).body
    assert back["details"]["hardship_file_id"] == opened["file_id"]
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        CloseHardshipFile(file_id=opened["file_id"], closed_on="2025-04-01", reason="again"),
    )
    # A new file after closure: file number 2, with its own id.
    second = ledger.execute(open_file(member_id, "2025-06-01")).body
    assert second["file_id"] == str(HardshipFile.id_for(member_id, 2))
    assert (
        ledger.execute(pay(tree.base_a, member_id, "hardship", "2025-06-02")).body["details"][
            "hardship_file_id"
        ]
        == second["file_id"]
    )


def test_one_open_file_per_person(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 2, tree.base_a)
    ledger.execute(open_file(member_id))
    refused(ledger, FileAlreadyOpen, ledger.execute, open_file(member_id, "2024-03-01"))


def test_concurrent_openings_leave_one_file(backend, tree: Tree, ledger: Ledger) -> None:
    """Two ledgers (two processes' writers) open a file for the same person at once: the
    derived id makes the second a conflict, decided again as FileAlreadyOpen."""
    member_id = join(ledger, 3, tree.base_a)
    other = backend.open()
    outcomes: list[object] = []

    def attempt(app: Ledger, on: str) -> None:
        try:
            outcomes.append(app.execute(open_file(member_id, on)).body["file_id"])
        except FileAlreadyOpen as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=attempt, args=(app, on))
        for app, on in ((ledger, "2024-02-01"), (other, "2024-02-02"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(o, FileAlreadyOpen) for o in outcomes) == 1
    assert ledger.repository.get(HardshipFile.id_for(member_id, 1)).is_open
    assert not ledger.stored_ids({HardshipFile.id_for(member_id, 2)})


def test_only_the_persons_own_union_opens_a_file(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 4, tree.base_a)
    refused(
        ledger, NotHomeUnion, ledger.execute, open_file(member_id, organization_code=tree.base_b)
    )
    refused(
        ledger, NotHomeUnion, ledger.execute, open_file(member_id, organization_code=tree.county)
    )
    refused(ledger, InvalidValue, ledger.execute, open_file(member_id, category="poor"))
    refused(ledger, InvalidValue, ledger.execute, open_file(member_id, monthly_income_per_head=720))
    refused(ledger, InvalidValue, ledger.execute, open_file("no-such-member"))
    ledger.execute(
        ExitMember(member_id=member_id, effective_on="2024-01-20", change_code=6, reason_code=5)
    )
    refused(ledger, NotAMember, ledger.execute, open_file(member_id))


def test_the_file_follows_the_person_on_transfer(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 5, tree.base_a)
    file_id = ledger.execute(open_file(member_id)).body["file_id"]
    transfer = ledger.execute(
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_b,
            effective_on="2024-03-01",
            reason_code=1,
        )
    ).body["transfer_id"]
    ledger.execute(
        AcceptTransfer(member_id=member_id, transfer_id=transfer, effective_on="2024-03-01")
    )
    view = read_hardship_file(ledger.unit_of_work(), file_id)
    assert view["organization_code"] == tree.base_b and view["opened_by"] == tree.base_a
    assert view["status"] == "open"
    # The new union pays against the same file; the old one may no longer pay the person.
    paid = ledger.execute(pay(tree.base_b, member_id, "hardship", "2024-03-05")).body
    assert paid["details"]["hardship_file_id"] == file_id
    refused(
        ledger, InvalidValue, ledger.execute, pay(tree.base_a, member_id, "hardship", "2024-03-05")
    )
    # And a second file is refused at the new union as well.
    refused(ledger, FileAlreadyOpen, ledger.execute, open_file(member_id, "2024-03-06"))


def test_model_worker_payouts_stop_at_revocation(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 6, tree.base_a)
    refused(
        ledger,
        NotOnRegister,
        ledger.execute,
        pay(tree.base_a, member_id, "model_worker", "2024-02-10"),
    )
    worker = ledger.execute(
        RegisterModelWorker(
            id_number=person(6),
            name="赵六",
            honour="县级劳动模范",
            level="county",
            awarded_year=2024,
            organization_code=tree.county,
        )
    ).body
    # The same keyed id as the roll: one person, one id.
    assert worker["member_id"] == member_id and worker["status"] == "active"
    again = ledger.execute(
        RegisterModelWorker(
            id_number=person(6),
            name="赵六",
            honour="市级劳动模范",
            level="city",
            awarded_year=2024,
            organization_code=tree.county,
        )
    ).body
    assert again["model_worker_id"] == worker["model_worker_id"] and again["level"] == "city"
    paid = ledger.execute(pay(tree.base_a, member_id, "model_worker", "2024-02-10")).body
    assert paid["details"]["model_worker_id"] == worker["model_worker_id"]
    ledger.execute(
        RevokeModelWorker(
            model_worker_id=worker["model_worker_id"], revoked_on="2024-06-01", reason="撤销称号"
        )
    )
    error = refused(
        ledger,
        NotOnRegister,
        ledger.execute,
        pay(tree.base_a, member_id, "model_worker", "2024-06-01"),
    )
    assert "revoked on 2024-06-01" in str(error)
    assert ledger.execute(pay(tree.base_a, member_id, "model_worker", "2024-05-31", "1.00")).body
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        RevokeModelWorker(
            model_worker_id=worker["model_worker_id"], revoked_on="2024-07-01", reason="x"
        ),
    )
    refused(
        ledger,
        NotFound,
        ledger.execute,
        RevokeModelWorker(model_worker_id="nope", revoked_on="2024-07-01", reason="x"),
    )


def test_a_model_worker_before_the_award_year_is_not_paid(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 7, tree.base_a)
    ledger.execute(
        RegisterModelWorker(
            id_number=person(7),
            name="赵六",
            honour="县级劳动模范",
            level="county",
            awarded_year=2025,
            organization_code=tree.county,
        )
    )
    refused(
        ledger,
        NotOnRegister,
        ledger.execute,
        pay(tree.base_a, member_id, "model_worker", "2024-12-31"),
    )
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RegisterModelWorker(
            id_number=person(8),
            name="赵六",
            honour="县级劳动模范",
            level="township",
            awarded_year=2025,
            organization_code=tree.county,
        ),
    )
