"""Each domain rule through the Ledger application, on SQLite and PostgreSQL.

Every refusal is checked for its named error and for storing nothing (the head position stays).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import (
    AccountNotAtThisLevel,
    AlreadyExists,
    AlreadyMember,
    AlreadyReversed,
    BeforeFounding,
    InsufficientFunds,
    InvalidStatus,
    InvalidValue,
    NoLevyPolicy,
    NotFound,
    OrganizationInUse,
    OrganizationNotActive,
    PeriodClosed,
    RemittanceExceedsOwed,
    TransferPending,
    TreeViolation,
)
from domain.reserves import FoundingReserve
from service.application import Ledger
from service.commands import (
    AcceptTransfer,
    CancelTransfer,
    ChangeOrganization,
    ClosePeriod,
    DissolveOrganization,
    ExitMember,
    FoundOrganization,
    JoinMember,
    OpenHardshipFile,
    PaySubsidy,
    RecordDues,
    RecordExpense,
    RecordLevy,
    RecordRemittance,
    ReinstateMember,
    RetainMember,
    ReverseVoucher,
    StartTransfer,
)
from tests.service.scenario import (
    COUNTY_REGION,
    Tree,
    balances,
    base_union,
    employer,
    found_tree,
    lines,
    org_code,
    owed,
    person,
    refused,
)


@pytest.fixture
def tree(ledger: Ledger) -> Tree:
    return found_tree(ledger)


def join(ledger: Ledger, n: int, org: str, on: str = "2024-01-02", name: str = "张三") -> str:
    return ledger.execute(
        JoinMember(id_number=person(n), name=name, organization_code=org, joined_on=on)
    ).body["member_id"]


def hardship_file(ledger: Ledger, member_id: str, on: str = "2024-01-03") -> str:
    """建档: a hardship file for the member, so that hardship payouts may be made to them."""
    return ledger.execute(
        OpenHardshipFile(
            member_id=member_id,
            category="relative",
            causes=["unemployment"],
            household_size=3,
            monthly_income_per_head="900.00",
            opened_on=on,
        )
    ).body["file_id"]


def member_count(ledger: Ledger, code: str) -> int:
    return ledger.get_organization(code)["member_count"]


def fund(ledger: Ledger, org: str, amount: str, on: str = "2024-01-05") -> dict:
    """Puts money in a base union's bank account as dues (Dr 102, Cr 401)."""
    return ledger.execute(
        RecordDues(organization_code=org, period=on[:7], amount=amount, received_on=on)
    ).body


def tax_levy(
    ledger: Ledger,
    tree: Tree,
    receiver: str,
    base: str,
    emp: str,
    payroll: str,
    amount: str,
    on: str = "2024-04-10",
    period: str = "2024-03",
) -> dict:
    return ledger.execute(
        RecordLevy(
            receiving_organization_code=receiver,
            base_organization_code=base,
            employer_code=emp,
            period=period,
            payroll_total=payroll,
            amount=amount,
            channel="tax",
            received_on=on,
        )
    ).body


# --- membership: one per person anywhere ---------------------------------------------------------


def test_second_membership_at_another_union_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    refused(
        ledger,
        AlreadyMember,
        ledger.execute,
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.base_b, joined_on="2024-02-01"
        ),
    )
    refused(
        ledger,
        AlreadyMember,
        ledger.execute,
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.base_a, joined_on="2024-02-01"
        ),
    )
    assert ledger.find_member(person(1))["organization_code"] == tree.base_a
    assert ledger.get_member(member_id)["status"] == "active"
    assert (member_count(ledger, tree.base_a), member_count(ledger, tree.base_b)) == (1, 0)


def test_exit_then_rejoin_elsewhere_keeps_the_member_id(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    exited = ledger.execute(
        ExitMember(member_id=member_id, effective_on="2024-03-01", change_code=6, reason_code=5)
    )
    assert exited.body["status"] == "left"
    assert member_count(ledger, tree.base_a) == 0
    rejoined = ledger.execute(
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.base_b, joined_on="2024-03-02"
        )
    )
    assert rejoined.body["member_id"] == member_id
    assert rejoined.body["status"] == "active"
    assert rejoined.body["organization_code"] == tree.base_b
    assert (member_count(ledger, tree.base_a), member_count(ledger, tree.base_b)) == (0, 1)


def test_rejoin_cannot_predate_the_exit(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    ledger.execute(
        ExitMember(member_id=member_id, effective_on="2024-03-01", change_code=5, reason_code=6)
    )
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.base_b, joined_on="2024-02-01"
        ),
    )


def test_joining_a_dissolved_union_is_refused(ledger: Ledger, tree: Tree) -> None:
    ledger.execute(DissolveOrganization(code=tree.base_b, dissolved_on="2024-01-03"))
    refused(
        ledger,
        OrganizationNotActive,
        ledger.execute,
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.base_b, joined_on="2024-01-04"
        ),
    )


def test_members_join_base_unions_only(ledger: Ledger, tree: Tree) -> None:
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.county, joined_on="2024-01-04"
        ),
    )


# --- transfers -----------------------------------------------------------------------------------


def test_transfer_start_keeps_member_on_releasing_roll_until_accepted(
    ledger: Ledger, tree: Tree
) -> None:
    member_id = join(ledger, 1, tree.base_a)
    started = ledger.execute(
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_b,
            effective_on="2024-02-01",
            reason_code=1,
        )
    )
    transfer_id = started.body["transfer_id"]
    member = ledger.get_member(member_id)
    assert member["status"] == "transfer_pending"
    assert member["organization_code"] == tree.base_a
    assert member["pending_transfer"]["to_organization_code"] == tree.base_b
    assert (member_count(ledger, tree.base_a), member_count(ledger, tree.base_b)) == (1, 0)

    accepted = ledger.execute(
        AcceptTransfer(member_id=member_id, transfer_id=transfer_id, effective_on="2024-02-03")
    )
    assert accepted.body["status"] == "active"
    assert accepted.body["organization_code"] == tree.base_b
    assert accepted.body["pending_transfer"] is None
    assert (member_count(ledger, tree.base_a), member_count(ledger, tree.base_b)) == (0, 1)
    refused(
        ledger,
        NotFound,
        ledger.execute,
        AcceptTransfer(member_id=member_id, transfer_id=transfer_id, effective_on="2024-02-04"),
    )


def test_cancelled_transfer_leaves_member_where_it_was(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    started = ledger.execute(
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_c,
            effective_on="2024-02-01",
            reason_code=1,
        )
    )
    transfer_id = started.body["transfer_id"]
    cancelled = ledger.execute(CancelTransfer(member_id=member_id, transfer_id=transfer_id))
    assert cancelled.body["status"] == "active"
    assert cancelled.body["organization_code"] == tree.base_a
    assert cancelled.body["pending_transfer"] is None
    refused(
        ledger,
        NotFound,
        ledger.execute,
        AcceptTransfer(member_id=member_id, transfer_id=transfer_id, effective_on="2024-02-03"),
    )
    refused(
        ledger,
        NotFound,
        ledger.execute,
        CancelTransfer(member_id=member_id, transfer_id=transfer_id),
    )
    assert (member_count(ledger, tree.base_a), member_count(ledger, tree.base_c)) == (1, 0)


def test_transfer_to_a_dissolved_union_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    ledger.execute(DissolveOrganization(code=tree.base_b, dissolved_on="2024-01-10"))
    refused(
        ledger,
        OrganizationNotActive,
        ledger.execute,
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_b,
            effective_on="2024-02-01",
            reason_code=1,
        ),
    )
    assert ledger.get_member(member_id)["status"] == "active"


def test_transfer_to_own_union_or_a_higher_union_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_a,
            effective_on="2024-02-01",
            reason_code=1,
        ),
    )
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.county,
            effective_on="2024-02-01",
            reason_code=1,
        ),
    )


def test_second_pending_transfer_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    ledger.execute(
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_b,
            effective_on="2024-02-01",
            reason_code=1,
        )
    )
    refused(
        ledger,
        TransferPending,
        ledger.execute,
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_c,
            effective_on="2024-02-02",
            reason_code=1,
        ),
    )
    # Nothing else may change a member whose transfer is pending.
    refused(
        ledger,
        TransferPending,
        ledger.execute,
        RetainMember(member_id=member_id, effective_on="2024-02-02", reason_code=2),
    )
    refused(
        ledger,
        TransferPending,
        ledger.execute,
        ExitMember(member_id=member_id, effective_on="2024-02-02", change_code=6, reason_code=5),
    )


# --- retention ------------------------------------------------------------------------------------


def test_retain_and_reinstate(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    assert (
        ledger.execute(
            RetainMember(member_id=member_id, effective_on="2024-02-01", reason_code=3)
        ).body["status"]
        == "retained"
    )
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        RetainMember(member_id=member_id, effective_on="2024-02-02", reason_code=3),
    )
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        StartTransfer(
            member_id=member_id,
            to_organization_code=tree.base_b,
            effective_on="2024-02-02",
            reason_code=1,
        ),
    )
    assert member_count(ledger, tree.base_a) == 1  # retained members stay on the roll
    assert (
        ledger.execute(ReinstateMember(member_id=member_id, effective_on="2024-03-01")).body[
            "status"
        ]
        == "active"
    )
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        ReinstateMember(member_id=member_id, effective_on="2024-03-02"),
    )


# --- payouts and the bank balance ----------------------------------------------------------------


def test_expense_beyond_the_bank_balance_is_refused(ledger: Ledger, tree: Tree) -> None:
    fund(ledger, tree.base_a, "100.00")
    refused(
        ledger,
        InsufficientFunds,
        ledger.execute,
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="100.01",
            earmarked=False,
            description="职工活动",
            paid_on="2024-01-06",
        ),
    )
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="100.00",
            earmarked=False,
            description="职工活动",
            paid_on="2024-01-06",
        )
    )
    assert balances(ledger, tree.base_a) == {"401": "-100.00", "501": "100.00"}
    refused(
        ledger,
        InsufficientFunds,
        ledger.execute,
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="0.01",
            earmarked=False,
            description="职工活动",
            paid_on="2024-01-07",
        ),
    )


def test_subsidy_to_a_person_beyond_the_bank_balance_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    fund(ledger, tree.base_a, "500.00")
    hardship_file(ledger, member_id)
    refused(
        ledger,
        InsufficientFunds,
        ledger.execute,
        PaySubsidy(
            payer_organization_code=tree.base_a,
            recipient={"member_id": member_id},
            programme="hardship",
            amount="500.01",
            earmarked=True,
            approval_ref="帮扶-2024-001",
            paid_on="2024-01-08",
        ),
    )
    paid = ledger.execute(
        PaySubsidy(
            payer_organization_code=tree.base_a,
            recipient={"member_id": member_id},
            programme="hardship",
            amount="300.00",
            earmarked=True,
            approval_ref="帮扶-2024-001",
            paid_on="2024-01-08",
        )
    )
    assert lines(paid.body) == [
        (tree.base_a, "102", "0.00", "300.00", None),
        (tree.base_a, "50404", "300.00", "0.00", None),
    ]
    assert all(p["earmarked"] for p in paid.body["postings"])
    assert paid.body["details"]["member_id"] == member_id
    assert paid.body["details"]["hardship_file_id"]


def test_subsidy_to_a_member_who_left_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    fund(ledger, tree.base_a, "500.00")
    ledger.execute(
        ExitMember(member_id=member_id, effective_on="2024-01-06", change_code=6, reason_code=5)
    )
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        PaySubsidy(
            payer_organization_code=tree.base_a,
            recipient={"member_id": member_id},
            programme="school",
            amount="100.00",
            earmarked=False,
            approval_ref="助学-1",
            paid_on="2024-01-08",
        ),
    )


def test_subsidy_to_a_member_outside_the_payer_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_a)
    fund(ledger, tree.base_b, "500.00")
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        PaySubsidy(
            payer_organization_code=tree.base_b,
            recipient={"member_id": member_id},
            programme="school",
            amount="100.00",
            earmarked=False,
            approval_ref="助学-1",
            paid_on="2024-01-08",
        ),
    )


def test_subsidy_to_a_lower_union(ledger: Ledger, tree: Tree) -> None:
    # The county needs money first: a tax-channel levy leaves it 2469.14 in the bank.
    tax_levy(ledger, tree, tree.county, tree.base_a, tree.employer_a, "123457.00", "2469.14")
    refused(
        ledger,
        InsufficientFunds,
        ledger.execute,
        PaySubsidy(
            payer_organization_code=tree.county,
            recipient={"organization_code": tree.base_c},
            programme="general",
            amount="2469.15",
            earmarked=True,
            approval_ref="补助-1",
            paid_on="2024-04-11",
        ),
    )
    paid = ledger.execute(
        PaySubsidy(
            payer_organization_code=tree.county,
            recipient={"organization_code": tree.base_c},
            programme="general",
            amount="1000.00",
            earmarked=True,
            approval_ref="补助-1",
            paid_on="2024-04-11",
        )
    )
    assert lines(paid.body) == sorted(
        [
            (tree.county, "508", "1000.00", "0.00", None),
            (tree.county, "102", "0.00", "1000.00", None),
            (tree.base_c, "102", "1000.00", "0.00", None),
            (tree.base_c, "40302", "0.00", "1000.00", None),
        ]
    )
    assert balances(ledger, tree.base_c) == {"102": "1000.00", "40302": "-1000.00"}
    # A union that is not below the payer gets nothing from it.
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        PaySubsidy(
            payer_organization_code=tree.township,
            recipient={"organization_code": tree.base_a},
            programme="general",
            amount="1.00",
            earmarked=False,
            approval_ref="补助-2",
            paid_on="2024-04-11",
        ),
    )


# --- closed months ------------------------------------------------------------------------------


def test_posting_into_a_closed_month_is_refused(ledger: Ledger, tree: Tree) -> None:
    fund(ledger, tree.base_a, "100.00", on="2024-01-05")
    ledger.execute(ClosePeriod(organization_code=tree.base_a, period="2024-01"))
    refused(
        ledger,
        PeriodClosed,
        ledger.execute,
        RecordDues(
            organization_code=tree.base_a, period="2024-01", amount="1.00", received_on="2024-01-31"
        ),
    )
    refused(
        ledger,
        PeriodClosed,
        ledger.execute,
        RecordExpense(
            organization_code=tree.base_a,
            account_code="510",
            amount="1.00",
            earmarked=False,
            description="其他",
            paid_on="2024-01-20",
        ),
    )
    # The month after is open, and another union's January is open too.
    fund(ledger, tree.base_a, "1.00", on="2024-02-01")
    fund(ledger, tree.base_b, "1.00", on="2024-01-31")
    refused(
        ledger,
        AlreadyExists,
        ledger.execute,
        ClosePeriod(organization_code=tree.base_a, period="2024-01"),
    )


def test_voucher_touching_a_closed_book_is_refused_for_all(ledger: Ledger, tree: Tree) -> None:
    tax_levy(ledger, tree, tree.county, tree.base_a, tree.employer_a, "123457.00", "2469.14")
    ledger.execute(ClosePeriod(organization_code=tree.base_c, period="2024-04"))
    refused(
        ledger,
        PeriodClosed,
        ledger.execute,
        PaySubsidy(
            payer_organization_code=tree.county,
            recipient={"organization_code": tree.base_c},
            programme="general",
            amount="1.00",
            earmarked=False,
            approval_ref="补助-1",
            paid_on="2024-04-20",
        ),
    )
    assert balances(ledger, tree.county)["102"] == "2469.14"


# --- reversals ----------------------------------------------------------------------------------


def test_reversal_repeats_postings_in_red_ink_and_happens_once(ledger: Ledger, tree: Tree) -> None:
    original = fund(ledger, tree.base_a, "88.80")
    reversal = ledger.execute(
        ReverseVoucher(
            voucher_id=original["voucher_id"], effective_on="2024-01-09", reason="金额录错"
        )
    )
    assert reversal.body["kind"] == "reversal"
    assert reversal.body["reverses"] == original["voucher_id"]

    # 红字冲销: the same accounts on the same sides, the amounts negated.
    def red(amount: str) -> str:
        return amount if amount == "0.00" else f"-{amount}"

    assert lines(reversal.body) == sorted(
        (o, a, red(d), red(c), cp) for o, a, d, c, cp in lines(original)
    )
    assert balances(ledger, tree.base_a) == {}
    assert ledger.get_voucher(original["voucher_id"])["reversed_by"] == reversal.body["voucher_id"]
    refused(
        ledger,
        AlreadyReversed,
        ledger.execute,
        ReverseVoucher(
            voucher_id=original["voucher_id"], effective_on="2024-01-10", reason="再冲一次"
        ),
    )
    refused(
        ledger,
        AlreadyReversed,
        ledger.execute,
        ReverseVoucher(
            voucher_id=reversal.body["voucher_id"], effective_on="2024-01-10", reason="冲销冲销"
        ),
    )


def test_reversal_that_would_overdraw_is_refused(ledger: Ledger, tree: Tree) -> None:
    original = fund(ledger, tree.base_a, "50.00")
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="30.00",
            earmarked=False,
            description="活动",
            paid_on="2024-01-06",
        )
    )
    refused(
        ledger,
        InsufficientFunds,
        ledger.execute,
        ReverseVoucher(
            voucher_id=original["voucher_id"], effective_on="2024-01-09", reason="金额录错"
        ),
    )


def test_reversal_cannot_predate_its_voucher(ledger: Ledger, tree: Tree) -> None:
    original = fund(ledger, tree.base_a, "50.00", on="2024-01-05")
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        ReverseVoucher(
            voucher_id=original["voucher_id"], effective_on="2024-01-04", reason="金额录错"
        ),
    )


# --- dues with a members list ------------------------------------------------------------------


def test_dues_with_members_are_half_up_per_member(ledger: Ledger, tree: Tree) -> None:
    first, second = join(ledger, 1, tree.base_a), join(ledger, 2, tree.base_a)
    # 4321.00 * 0.5% = 21.605 -> 21.61 (half-up, where half-even would give 21.60);
    # 3000.90 * 0.5% = 15.0045 -> 15.00.
    members = [
        {"member_id": first, "wage": "4321.00", "amount": "21.61"},
        {"member_id": second, "wage": "3000.90", "amount": "15.00"},
    ]
    body = ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="36.61",
            received_on="2024-01-31",
            members=members,
        )
    ).body
    assert lines(body) == [
        (tree.base_a, "102", "36.61", "0.00", None),
        (tree.base_a, "401", "0.00", "36.61", None),
    ]
    assert [line["amount"] for line in body["details"]["members"]] == ["21.61", "15.00"]
    assert Decimal("4321.00") * Decimal("0.005") == Decimal("21.605")


def test_dues_line_with_wrong_rounding_is_refused(ledger: Ledger, tree: Tree) -> None:
    first = join(ledger, 1, tree.base_a)
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="21.60",
            received_on="2024-01-31",
            members=[{"member_id": first, "wage": "4321.00", "amount": "21.60"}],
        ),
    )


def test_dues_sum_must_match_the_members(ledger: Ledger, tree: Tree) -> None:
    first = join(ledger, 1, tree.base_a)
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="21.62",
            received_on="2024-01-31",
            members=[{"member_id": first, "wage": "4321.00", "amount": "21.61"}],
        ),
    )


def test_dues_from_a_retained_member_are_refused(ledger: Ledger, tree: Tree) -> None:
    first, second = join(ledger, 1, tree.base_a), join(ledger, 2, tree.base_a)
    ledger.execute(RetainMember(member_id=second, effective_on="2024-01-10", reason_code=2))
    exc = refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="31.61",
            received_on="2024-01-31",
            members=[
                {"member_id": first, "wage": "4321.00", "amount": "21.61"},
                {"member_id": second, "wage": "2000.00", "amount": "10.00"},
            ],
        ),
    )
    assert exc.field == "members[1].member_id"


def test_dues_from_another_unions_member_are_refused(ledger: Ledger, tree: Tree) -> None:
    other = join(ledger, 1, tree.base_b)
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="10.00",
            received_on="2024-01-31",
            members=[{"member_id": other, "wage": "2000.00", "amount": "10.00"}],
        ),
    )


# --- the levy ---------------------------------------------------------------------------------


def test_levy_worked_example_tax_channel_to_the_fen(ledger: Ledger, tree: Tree) -> None:
    """docs/domain.md, the worked example: 2,469.14 for a base union directly under the county,
    tax channel."""
    body = tax_levy(ledger, tree, tree.county, tree.base_a, tree.employer_a, "123457.00", "2469.14")
    assert lines(body) == sorted(
        [
            (tree.county, "102", "2469.14", "0.00", None),
            (tree.county, "402", "0.00", "493.83", None),
            (tree.county, "211", "0.00", "246.91", tree.city),
            (tree.county, "211", "0.00", "123.46", tree.province),
            (tree.county, "211", "0.00", "123.46", "national"),
            (tree.county, "212", "0.00", "1481.48", tree.base_a),
        ]
    )
    assert owed(ledger, tree.county, "211") == {
        tree.city: "246.91",
        tree.province: "123.46",
        "national": "123.46",
    }
    assert owed(ledger, tree.county, "212") == {tree.base_a: "1481.48"}
    assert balances(ledger, tree.county) == {
        "102": "2469.14",
        "211": "-493.83",
        "212": "-1481.48",
        "402": "-493.83",
    }


def test_levy_employer_channel_base_keeps_its_share(ledger: Ledger, tree: Tree) -> None:
    body = ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.base_a,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2024-03",
            payroll_total="123457.00",
            amount="2469.14",
            channel="employer",
            received_on="2024-04-10",
        )
    ).body
    assert lines(body) == sorted(
        [
            (tree.base_a, "102", "2469.14", "0.00", None),
            (tree.base_a, "402", "0.00", "1481.48", None),
            (tree.base_a, "211", "0.00", "493.83", tree.county),
            (tree.base_a, "211", "0.00", "246.91", tree.city),
            (tree.base_a, "211", "0.00", "123.46", tree.province),
            (tree.base_a, "211", "0.00", "123.46", "national"),
        ]
    )


def test_levy_through_a_township_keeps_the_township_share(ledger: Ledger, tree: Tree) -> None:
    # Base C sits under the township: 5% each to township and province and national, exact.
    body = tax_levy(ledger, tree, tree.county, tree.base_c, tree.employer_c, "100000.00", "2000.00")
    assert lines(body) == sorted(
        [
            (tree.county, "102", "2000.00", "0.00", None),
            (tree.county, "402", "0.00", "300.00", None),
            (tree.county, "211", "0.00", "200.00", tree.city),
            (tree.county, "211", "0.00", "100.00", tree.province),
            (tree.county, "211", "0.00", "100.00", "national"),
            (tree.county, "212", "0.00", "1200.00", tree.base_c),
            (tree.county, "212", "0.00", "100.00", tree.township),
        ]
    )


def test_levy_without_a_policy_is_refused(ledger: Ledger) -> None:
    tree = found_tree(ledger, policy=False)
    refused(
        ledger,
        NoLevyPolicy,
        tax_levy,
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_a,
        "123457.00",
        "2469.14",
    )


def test_levy_must_be_two_percent_of_payroll(ledger: Ledger, tree: Tree) -> None:
    refused(
        ledger,
        InvalidValue,
        tax_levy,
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_a,
        "123457.00",
        "2469.15",
    )


def test_levy_employer_must_match_the_base_union(ledger: Ledger, tree: Tree) -> None:
    refused(
        ledger,
        InvalidValue,
        tax_levy,
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_b,
        "123457.00",
        "2469.14",
    )


# --- founding reserve -------------------------------------------------------------------------


def test_founding_reserve_is_held_then_shared_out_at_founding(ledger: Ledger, tree: Tree) -> None:
    newcomer = employer(99)
    held = ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=None,
            employer_code=newcomer,
            period="2024-03",
            payroll_total="123457.00",
            amount="2469.14",
            channel="tax",
            received_on="2024-04-10",
        )
    ).body
    assert held["kind"] == "founding_reserve"
    assert lines(held) == [
        (tree.county, "102", "2469.14", "0.00", None),
        (tree.county, "215", "0.00", "2469.14", newcomer),
    ]
    assert owed(ledger, tree.county, "215") == {newcomer: "2469.14"}
    # A base union cannot hold a reserve.
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordLevy(
            receiving_organization_code=tree.base_a,
            base_organization_code=None,
            employer_code=newcomer,
            period="2024-03",
            payroll_total="100.00",
            amount="2.00",
            channel="employer",
            received_on="2024-04-10",
        ),
    )

    new_base = org_code(99, base=True)
    ledger.execute(
        FoundOrganization(
            code=new_base,
            name="新建会企业工会",
            level="base",
            parent_code=tree.county,
            region_code=COUNTY_REGION,
            founded_on="2024-05-01",
            employer_code=newcomer,
            employee_count=30,
        )
    )
    assert owed(ledger, tree.county, "215") == {}
    assert owed(ledger, tree.county, "212") == {new_base: "1481.48"}
    assert owed(ledger, tree.county, "211") == {
        tree.city: "246.91",
        tree.province: "123.46",
        "national": "123.46",
    }
    assert balances(ledger, tree.county) == {
        "102": "2469.14",
        "211": "-493.83",
        "212": "-1481.48",
        "402": "-493.83",
    }
    # Shared out once: the held voucher can no longer be reversed.
    refused(
        ledger,
        InvalidStatus,
        ledger.execute,
        ReverseVoucher(voucher_id=held["voucher_id"], effective_on="2024-05-02", reason="误收"),
    )


def test_reversed_founding_reserve_is_not_shared_out(ledger: Ledger, tree: Tree) -> None:
    newcomer = employer(98)
    held = ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=None,
            employer_code=newcomer,
            period="2024-03",
            payroll_total="50000.00",
            amount="1000.00",
            channel="tax",
            received_on="2024-04-10",
        )
    ).body
    ledger.execute(
        ReverseVoucher(voucher_id=held["voucher_id"], effective_on="2024-04-11", reason="误收")
    )
    ledger.execute(
        FoundOrganization(
            code=org_code(98, base=True),
            name="新建会企业工会",
            level="base",
            parent_code=tree.county,
            region_code=COUNTY_REGION,
            founded_on="2024-05-01",
            employer_code=newcomer,
            employee_count=30,
        )
    )
    assert balances(ledger, tree.county) == {}


# --- remittances ------------------------------------------------------------------------------


def employer_levy(ledger: Ledger, tree: Tree) -> None:
    """Base A receives 2,469.14 and owes 987.66 upwards (county 493.83, city 246.91, ...)."""
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.base_a,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2024-03",
            payroll_total="123457.00",
            amount="2469.14",
            channel="employer",
            received_on="2024-04-10",
        )
    )


def test_upward_remittance_in_full(ledger: Ledger, tree: Tree) -> None:
    employer_levy(ledger, tree)
    body = ledger.execute(
        RecordRemittance(
            from_organization_code=tree.base_a,
            to_organization_code=tree.county,
            kind="upward",
            amount="987.66",
            period="2024-03",
            paid_on="2024-04-15",
        )
    ).body
    assert lines(body) == sorted(
        [
            (tree.base_a, "211", "493.83", "0.00", tree.county),
            (tree.base_a, "211", "246.91", "0.00", tree.city),
            (tree.base_a, "211", "123.46", "0.00", tree.province),
            (tree.base_a, "211", "123.46", "0.00", "national"),
            (tree.base_a, "102", "0.00", "987.66", None),
            (tree.county, "102", "987.66", "0.00", None),
            (tree.county, "402", "0.00", "493.83", None),
            (tree.county, "211", "0.00", "246.91", tree.city),
            (tree.county, "211", "0.00", "123.46", tree.province),
            (tree.county, "211", "0.00", "123.46", "national"),
        ]
    )
    assert owed(ledger, tree.base_a, "211") == {}
    refused(
        ledger,
        RemittanceExceedsOwed,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.base_a,
            to_organization_code=tree.county,
            kind="upward",
            amount="0.01",
            period="2024-03",
            paid_on="2024-04-16",
        ),
    )
    # The county passes the rest up to the city: city keeps 246.91, owes the province onward.
    city_body = ledger.execute(
        RecordRemittance(
            from_organization_code=tree.county,
            to_organization_code=tree.city,
            kind="upward",
            amount="493.83",
            period="2024-03",
            paid_on="2024-04-20",
        )
    ).body
    assert (tree.city, "402", "0.00", "246.91", None) in lines(city_body)
    assert owed(ledger, tree.city, "211") == {tree.province: "123.46", "national": "123.46"}


def test_partial_upward_remittance_is_divided_in_proportion(ledger: Ledger, tree: Tree) -> None:
    employer_levy(ledger, tree)
    # 100.00 of 987.66 owed: exact parts 50.00, 24.9998.., 12.5000.., 12.5000.. fen-floored to
    # 5000/2499/1250/1250; the one fen left goes to the largest remainder (the city).
    body = ledger.execute(
        RecordRemittance(
            from_organization_code=tree.base_a,
            to_organization_code=tree.county,
            kind="upward",
            amount="100.00",
            period="2024-03",
            paid_on="2024-04-15",
        )
    ).body
    assert body["details"]["parts"] == {
        tree.county: "50.00",
        tree.city: "25.00",
        tree.province: "12.50",
        "national": "12.50",
    }
    assert owed(ledger, tree.base_a, "211") == {
        tree.county: "443.83",
        tree.city: "221.91",
        tree.province: "110.96",
        "national": "110.96",
    }


def test_remittance_beyond_what_is_owed_is_refused(ledger: Ledger, tree: Tree) -> None:
    employer_levy(ledger, tree)
    refused(
        ledger,
        RemittanceExceedsOwed,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.base_a,
            to_organization_code=tree.county,
            kind="upward",
            amount="987.67",
            period="2024-03",
            paid_on="2024-04-15",
        ),
    )
    refused(
        ledger,
        RemittanceExceedsOwed,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.base_b,
            to_organization_code=tree.county,
            kind="upward",
            amount="0.01",
            period="2024-03",
            paid_on="2024-04-15",
        ),
    )


def test_upward_remittance_goes_to_the_parent(ledger: Ledger, tree: Tree) -> None:
    employer_levy(ledger, tree)
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.base_a,
            to_organization_code=tree.city,
            kind="upward",
            amount="10.00",
            period="2024-03",
            paid_on="2024-04-15",
        ),
    )


def test_pass_down_remittance_in_full_and_in_part(ledger: Ledger, tree: Tree) -> None:
    # Tax channel for base C (under the township): the county owes base C 1200.00 and the
    # township 100.00 on 212.
    tax_levy(ledger, tree, tree.county, tree.base_c, tree.employer_c, "100000.00", "2000.00")
    refused(
        ledger,
        RemittanceExceedsOwed,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.county,
            to_organization_code=tree.township,
            kind="pass_down",
            amount="1300.01",
            period="2024-03",
            paid_on="2024-04-15",
        ),
    )
    # 130.00 of 1300.00: 120.00 for base C (owed onward by the township), 10.00 township's own.
    part = ledger.execute(
        RecordRemittance(
            from_organization_code=tree.county,
            to_organization_code=tree.township,
            kind="pass_down",
            amount="130.00",
            period="2024-03",
            paid_on="2024-04-15",
        )
    ).body
    assert lines(part) == sorted(
        [
            (tree.county, "212", "120.00", "0.00", tree.base_c),
            (tree.county, "212", "10.00", "0.00", tree.township),
            (tree.county, "102", "0.00", "130.00", None),
            (tree.township, "102", "130.00", "0.00", None),
            (tree.township, "402", "0.00", "10.00", None),
            (tree.township, "212", "0.00", "120.00", tree.base_c),
        ]
    )
    rest = ledger.execute(
        RecordRemittance(
            from_organization_code=tree.county,
            to_organization_code=tree.township,
            kind="pass_down",
            amount="1170.00",
            period="2024-03",
            paid_on="2024-04-16",
        )
    ).body
    assert rest["details"]["parts"] == {tree.base_c: "1080.00", tree.township: "90.00"}
    assert owed(ledger, tree.county, "212") == {}
    ledger.execute(
        RecordRemittance(
            from_organization_code=tree.township,
            to_organization_code=tree.base_c,
            kind="pass_down",
            amount="1200.00",
            period="2024-03",
            paid_on="2024-04-17",
        )
    )
    assert balances(ledger, tree.base_c) == {"102": "1200.00", "402": "-1200.00"}
    assert balances(ledger, tree.township) == {"402": "-100.00", "102": "100.00"}


def test_pass_down_goes_to_a_direct_child(ledger: Ledger, tree: Tree) -> None:
    tax_levy(ledger, tree, tree.county, tree.base_c, tree.employer_c, "100000.00", "2000.00")
    refused(
        ledger,
        InvalidValue,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.county,
            to_organization_code=tree.base_c,
            kind="pass_down",
            amount="10.00",
            period="2024-03",
            paid_on="2024-04-15",
        ),
    )


def test_remittance_without_bank_money_is_refused(ledger: Ledger, tree: Tree) -> None:
    employer_levy(ledger, tree)
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="501",
            amount="2400.00",
            earmarked=False,
            description="活动",
            paid_on="2024-04-11",
        )
    )
    refused(
        ledger,
        InsufficientFunds,
        ledger.execute,
        RecordRemittance(
            from_organization_code=tree.base_a,
            to_organization_code=tree.county,
            kind="upward",
            amount="987.66",
            period="2024-03",
            paid_on="2024-04-15",
        ),
    )


# --- the organisation tree ------------------------------------------------------------------


def test_organization_moves_under_another_parent(ledger: Ledger, tree: Tree) -> None:
    moved = ledger.execute(
        ChangeOrganization(code=tree.base_a, effective_on="2024-06-01", parent_code=tree.township)
    )
    assert moved.body["parent_code"] == tree.township
    # A levy for a period after the move follows the new path (township gets its share).
    body = tax_levy(
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_a,
        "100000.00",
        "2000.00",
        on="2024-07-10",
        period="2024-06",
    )
    assert (tree.county, "212", "0.00", "100.00", tree.township) in lines(body)
    # A levy dated before the move still follows the old path (no township share).
    old = tax_levy(
        ledger,
        tree,
        tree.county,
        tree.base_a,
        tree.employer_a,
        "100000.00",
        "2000.00",
        on="2024-05-10",
        period="2024-04",
    )
    assert [line for line in lines(old) if line[4] == tree.township] == []


def test_moving_a_union_below_itself_is_refused(ledger: Ledger, tree: Tree) -> None:
    exc = refused(
        ledger,
        TreeViolation,
        ledger.execute,
        ChangeOrganization(code=tree.county, effective_on="2024-06-01", parent_code=tree.township),
    )
    assert "cycle" in exc.message
    exc = refused(
        ledger,
        TreeViolation,
        ledger.execute,
        ChangeOrganization(
            code=tree.township, effective_on="2024-06-01", parent_code=tree.township
        ),
    )
    assert "cycle" in exc.message


def test_moving_under_a_lower_level_is_refused(ledger: Ledger, tree: Tree) -> None:
    refused(
        ledger,
        TreeViolation,
        ledger.execute,
        ChangeOrganization(code=tree.township, effective_on="2024-06-01", parent_code=tree.base_a),
    )


def test_dissolution_with_members_or_children_is_refused(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_c)
    refused(
        ledger,
        OrganizationInUse,
        ledger.execute,
        DissolveOrganization(code=tree.base_c, dissolved_on="2024-03-01"),
    )
    refused(
        ledger,
        OrganizationInUse,
        ledger.execute,
        DissolveOrganization(code=tree.township, dissolved_on="2024-03-01"),
    )
    ledger.execute(
        ExitMember(member_id=member_id, effective_on="2024-02-01", change_code=6, reason_code=5)
    )
    assert (
        ledger.execute(DissolveOrganization(code=tree.base_c, dissolved_on="2024-03-01")).body[
            "status"
        ]
        == "dissolved"
    )
    assert (
        ledger.execute(DissolveOrganization(code=tree.township, dissolved_on="2024-03-02")).body[
            "status"
        ]
        == "dissolved"
    )
    refused(
        ledger,
        OrganizationNotActive,
        ledger.execute,
        DissolveOrganization(code=tree.base_c, dissolved_on="2024-03-03"),
    )
    refused(
        ledger,
        OrganizationNotActive,
        ledger.execute,
        base_union(50, tree.township, "2024-04-01", name="晚到工会", employees=3),
    )


def test_a_retained_member_still_blocks_dissolution(ledger: Ledger, tree: Tree) -> None:
    member_id = join(ledger, 1, tree.base_b)
    ledger.execute(RetainMember(member_id=member_id, effective_on="2024-02-01", reason_code=3))
    refused(
        ledger,
        OrganizationInUse,
        ledger.execute,
        DissolveOrganization(code=tree.base_b, dissolved_on="2024-03-01"),
    )


def test_second_root_and_duplicate_code_are_refused(ledger: Ledger, tree: Tree) -> None:
    refused(
        ledger,
        TreeViolation,
        ledger.execute,
        FoundOrganization(
            code=org_code(60, base=False),
            name="另一个根",
            level="county",
            parent_code=None,
            region_code=COUNTY_REGION,
            founded_on="2024-01-01",
        ),
    )
    refused(
        ledger,
        TreeViolation,
        ledger.execute,
        FoundOrganization(
            code=tree.base_a,
            name="重复",
            level="base",
            parent_code=tree.county,
            region_code=COUNTY_REGION,
            founded_on="2024-01-01",
            employer_code=tree.employer_a,
            employee_count=1,
        ),
    )


def test_nothing_is_posted_before_the_unions_founding(ledger: Ledger, tree: Tree) -> None:
    code = org_code(60, base=True)
    ledger.execute(base_union(60, tree.county, "2024-06-01"))
    early = RecordDues(
        organization_code=code, period="2024-05", amount="10.00", received_on="2024-05-31"
    )
    error = refused(ledger, BeforeFounding, ledger.execute, early)
    assert "2024-06-01" in error.message
    ledger.execute(
        RecordDues(
            organization_code=code, period="2024-06", amount="10.00", received_on="2024-06-01"
        )
    )


def test_county_level_accounts_are_refused_below_county_level(ledger: Ledger, tree: Tree) -> None:
    """A township union paid a 508 subsidy to a base union: 508 is county level and above."""
    ledger.execute(
        RecordDues(
            organization_code=tree.base_c,
            period="2024-03",
            amount="500.00",
            received_on="2024-03-01",
        )
    )
    give = {
        "recipient": {"organization_code": tree.base_c},
        "programme": "general",
        "amount": "100.00",
        "earmarked": False,
        "approval_ref": "乡工补〔2024〕1号",
        "paid_on": "2024-03-10",
    }
    # The township gets money to pay from: a subsidy from the county (which may use 508).
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2024-02",
            payroll_total="100000.00",
            amount="2000.00",
            channel="tax",
            received_on="2024-03-01",
        )
    )
    ledger.execute(
        PaySubsidy(
            payer_organization_code=tree.county,
            **give | {"recipient": {"organization_code": tree.township}},
        )
    )
    error = refused(
        ledger,
        AccountNotAtThisLevel,
        ledger.execute,
        PaySubsidy(payer_organization_code=tree.township, **give),
    )
    assert "508" in error.message and "township" in error.message
    for account in ("501",):
        ledger.execute(
            RecordExpense(
                organization_code=tree.township,
                account_code=account,
                amount="10.00",
                earmarked=False,
                description="活动",
                paid_on="2024-03-10",
            )
        )


def test_an_employer_has_one_base_union_and_no_reserve_once_it_has_one(
    ledger: Ledger, tree: Tree
) -> None:
    second = FoundOrganization(
        code=org_code(61, base=True),
        name="第二个工会",
        level="base",
        parent_code=tree.county,
        region_code=COUNTY_REGION,
        founded_on="2024-06-01",
        employer_code=tree.employer_a,
        employee_count=10,
    )
    error = refused(ledger, AlreadyExists, ledger.execute, second)
    assert tree.base_a in error.message
    reserve = RecordLevy(
        receiving_organization_code=tree.county,
        base_organization_code=None,
        employer_code=tree.employer_a,
        period="2024-03",
        payroll_total="10000.00",
        amount="200.00",
        channel="tax",
        received_on="2024-04-10",
    )
    refused(ledger, AlreadyExists, ledger.execute, reserve)


def test_a_reserve_released_after_the_holder_closed_the_founding_month(
    ledger: Ledger, tree: Tree
) -> None:
    emp = employer(62)
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=None,
            employer_code=emp,
            period="2024-03",
            payroll_total="10000.00",
            amount="200.00",
            channel="tax",
            received_on="2024-04-10",
        )
    )
    for month in ("2024-04", "2024-05"):
        ledger.execute(ClosePeriod(organization_code=tree.county, period=month))
    founded = ledger.execute(
        FoundOrganization(
            code=org_code(62, base=True),
            name="新建工会",
            level="base",
            parent_code=tree.county,
            region_code=COUNTY_REGION,
            founded_on="2024-05-20",
            employer_code=emp,
            employee_count=10,
        )
    )
    assert founded.body["code"] == org_code(62, base=True)
    rows = ledger.unit_of_work().get(FoundingReserve.id_for(emp))
    assert rows.held == {} and rows.union_code == org_code(62, base=True)
    release = [
        v
        for v in (ledger.get_voucher(str(e.originator_id)) for e in stored_vouchers(ledger))
        if v["kind"] == "founding_reserve_release"
    ]
    assert [(v["effective_on"], v["details"]["founded_on"]) for v in release] == [
        ("2024-06-01", "2024-05-20")
    ]


def stored_vouchers(ledger: Ledger) -> list:
    """The first event of every voucher in the store."""
    events = [
        ledger.mapper.to_domain_event(n)
        for n in ledger.recorder.select_notifications(1, 10**6)
        if n.topic == "ledger:Voucher.Posted"
    ]
    return events


def test_dues_are_judged_by_the_status_in_the_dues_month(ledger: Ledger, tree: Tree) -> None:
    """Retained from April: March's dues are paid (it was refused by today's status)."""
    member_id = join(ledger, 70, tree.base_a, on="2024-01-02")
    ledger.execute(RetainMember(member_id=member_id, effective_on="2024-04-01", reason_code=7))
    line = {"member_id": member_id, "wage": "6000.00", "amount": "30.00"}

    def dues(period: str, on: str) -> RecordDues:
        return RecordDues(
            organization_code=tree.base_a,
            period=period,
            amount="30.00",
            received_on=on,
            members=[line],
        )

    assert ledger.execute(dues("2024-03", "2024-04-10")).body["kind"] == "dues"
    error = refused(ledger, InvalidValue, ledger.execute, dues("2024-04", "2024-04-30"))
    assert "retained in 2024-04" in error.message
