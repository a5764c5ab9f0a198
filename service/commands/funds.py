"""Fund commands: levy policies (经费分成政策), 会费 (dues), 拨缴经费 (the levy), 上解/回拨
(remittances), 补助 (subsidies), 支出 (expenses), 红字冲销 (reversals), 月结 (month closes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.accounts import (
    BANK,
    PAYABLE_DOWN,
    PAYABLE_UP,
    PROGRAMME_ACCOUNTS,
    expense_account,
)
from domain.errors import InvalidStatus, InvalidValue, NotFound, RemittanceExceedsOwed
from domain.funds import (
    dues_for_wage,
    dues_postings,
    expense_postings,
    founding_reserve_postings,
    levy_postings,
    person_subsidy_postings,
    remittance_postings,
    union_subsidy_postings,
    year_end_postings,
)
from domain.identity import CreditCode, parse_region_code
from domain.levy import (
    SHARE_LEVELS,
    LevyPolicy,
    divide_owed,
    level_rank,
    levy_due,
    parse_shares,
    share_levy,
)
from domain.members import parse_flag
from domain.money import Money
from domain.organizations import Organization
from domain.period import Month, parse_date
from domain.reserves import FoundingReserve
from domain.vouchers import Voucher, credit, debit
from service.commands.base import Command
from service.commands.registers import register_entry
from service.results import policy_view, voucher_view
from service.unit_of_work import UnitOfWork, as_uuid
from storage.clock import today_in_china

PROGRAMMES = tuple(PROGRAMME_ACCOUNTS)
MAX_DUES_LINES = 100_000
MAX_TEXT_LENGTH = 500


def parse_text(value: Any, field: str, limit: int) -> str:
    """Free text a voucher keeps (a description, a reason, an approval reference)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, "cannot be empty")
    if len(value) > limit:
        raise InvalidValue(field, f"at most {limit} characters")
    if any(not ch.isprintable() for ch in value):
        raise InvalidValue(field, "cannot contain control characters")
    return value.strip()


def voucher_in(uow: UnitOfWork, voucher_id: str) -> Voucher:
    """The voucher with this id (NotFound for anything else)."""
    uuid = as_uuid(voucher_id)
    if uuid is None:
        raise NotFound(f"voucher {str(voucher_id)[:40]} not found")
    voucher = uow.get(uuid)
    if not isinstance(voucher, Voucher):
        raise NotFound(f"voucher {voucher_id} not found")
    return voucher


@dataclass(frozen=True, kw_only=True, eq=False)
class AdoptLevyPolicy(Command):
    """经费分成政策: the shares per level for a region prefix from a date."""

    NAME = "adopt_levy_policy"
    region_code: str
    effective_from: Any
    shares: dict[str, str]

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        policy = LevyPolicy(
            region_prefix=parse_region_code(self.region_code, lengths=(2, 4, 6)),
            effective_from=parse_date(self.effective_from, field="effective_from"),
            shares=parse_shares(self.shares),
        )
        uow.policies().adopt(policy)
        return policy_view(policy)


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordDues(Command):
    """会费: 0.5% of each member's wage, kept whole by the base union (Dr 102, Cr 401)."""

    NAME = "record_dues"
    organization_code: str
    period: str
    amount: str
    received_on: Any
    members: list[dict[str, Any]] | None = None

    def will_read(self) -> tuple[UUID, ...]:
        return listed_member_ids(self.members)

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.organization_code, field="organization_code")
        org.require_active()
        if not org.is_base:
            raise InvalidValue("organization_code", "dues are paid to a base union")
        month = Month.parse(self.period)
        money = Money.parse_positive(self.amount)
        day = parse_date(self.received_on, field="received_on")
        details: dict[str, Any] = {"period": str(month)}
        if self.members is not None:
            details["members"] = dues_lines(uow, org, self.members, money, month)
        voucher = uow.post("dues", day, dues_postings(org.code, money), details)
        return voucher_view(voucher)


def listed_member_ids(members: Any) -> tuple[UUID, ...]:
    """The member ids a dues receipt's lines name, those that are ids at all (dues_lines
    checks every line and says what is wrong with the others)."""
    if not isinstance(members, list) or len(members) > MAX_DUES_LINES:
        return ()
    ids = (as_uuid(line.get("member_id")) for line in members if isinstance(line, dict))
    return tuple(i for i in ids if i is not None)


def dues_lines(
    uow: UnitOfWork,
    org: Organization,
    members: list[dict[str, Any]],
    amount: Money,
    month: Month,
) -> list[dict[str, str]]:
    """The members a dues receipt lists, each with 0.5% of the wage, adding up to amount."""
    if not isinstance(members, list) or len(members) > MAX_DUES_LINES:
        raise InvalidValue("members", f"a list of at most {MAX_DUES_LINES} members")
    lines: list[dict[str, str]] = []
    seen: set[str] = set()
    total_fen = 0
    for i, line in enumerate(members):
        where = f"members[{i}]"
        if not isinstance(line, dict):
            raise InvalidValue(where, "each line has member_id, wage and amount")
        member = uow.member(line.get("member_id"), field=f"{where}.member_id")
        if str(member.id) in seen:
            raise InvalidValue(f"{where}.member_id", "a member appears twice")
        seen.add(str(member.id))
        if member.organization_code != org.code or not member.is_member:
            raise InvalidValue(f"{where}.member_id", f"not on the roll of {org.code}")
        if member.retained_on(month.last_day):
            # Judged by the status in the month the dues are for, not today's.
            raise InvalidValue(f"{where}.member_id", f"retained in {month}: no dues")
        wage = Money.parse_positive(line.get("wage"), field=f"{where}.wage")
        dues = Money.parse_positive(line.get("amount"), field=f"{where}.amount")
        if dues != dues_for_wage(wage):
            raise InvalidValue(
                f"{where}.amount", f"0.5% of {wage} is {dues_for_wage(wage)}, not {dues}"
            )
        total_fen += dues.fen
        lines.append({"member_id": str(member.id), "wage": str(wage), "amount": str(dues)})
    if total_fen != amount.fen:
        raise InvalidValue("amount", f"the members' dues add up to {Money(total_fen)}")
    return lines


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordLevy(Command):
    """拨缴经费: 2% of payroll, shared up the tree by the policy in force (or held as a
    founding reserve when the employer has no union yet: base_organization_code None)."""

    NAME = "record_levy"
    receiving_organization_code: str
    base_organization_code: str | None
    employer_code: str
    period: str
    payroll_total: str
    amount: str
    channel: str
    received_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        receiver = uow.org(self.receiving_organization_code, field="receiving_organization_code")
        receiver.require_active("receiving organisation")
        employer = CreditCode.parse(self.employer_code, field="employer_code")
        month = Month.parse(self.period)
        payroll = Money.parse_positive(self.payroll_total, field="payroll_total")
        money = Money.parse_positive(self.amount)
        if self.channel not in ("employer", "tax"):
            raise InvalidValue("channel", "channel is employer or tax")
        day = parse_date(self.received_on, field="received_on")
        if levy_due(payroll) != money:
            raise InvalidValue(
                "amount", f"2% of payroll {payroll} is {levy_due(payroll)}, not {money}"
            )
        details = {
            "employer_code": employer.value,
            "period": str(month),
            "payroll_total": str(payroll),
            "channel": self.channel,
            "base_organization_code": self.base_organization_code,
        }
        if self.base_organization_code is None:
            return hold_founding_reserve(uow, receiver, employer.value, month, money, day, details)
        base = uow.org(self.base_organization_code, field="base_organization_code")
        if not base.is_base:
            raise InvalidValue("base_organization_code", "not a base or joint base union")
        base.require_active("base union")
        if base.level == "base" and base.employer_code != employer.value:
            raise InvalidValue(
                "employer_code", f"{base.code} sits in employer {base.employer_code}"
            )
        path_orgs = [base, *uow.ancestors(base, day)]
        if self.channel == "employer" and receiver.code != base.code:
            raise InvalidValue(
                "receiving_organization_code",
                "through the employer channel the base union receives",
            )
        if self.channel == "tax" and receiver.code not in [o.code for o in path_orgs[1:]]:
            raise InvalidValue(
                "receiving_organization_code",
                "through the tax channel a union above the base union receives",
            )
        policy = uow.policies().in_force(base.region_code, month.first_day)
        shares = share_levy(money, policy.shares, [(o.level, o.code) for o in path_orgs])
        details["policy"] = policy_view(policy)
        voucher = uow.post(
            "levy", day, levy_postings(receiver.code, receiver.rank, shares), details
        )
        return voucher_view(voucher)


def hold_founding_reserve(
    uow: UnitOfWork,
    receiver: Organization,
    employer: str,
    month: Month,
    money: Money,
    day: Any,
    details: dict[str, Any],
) -> dict[str, Any]:
    """建会筹备金: held by a higher union (215) until the employer's union is founded."""
    if receiver.is_base:
        raise InvalidValue(
            "receiving_organization_code", "a founding reserve is held by a higher union"
        )
    voucher = uow.post(
        "founding_reserve", day, founding_reserve_postings(receiver.code, employer, money), details
    )
    reserve = uow.get(FoundingReserve.id_for(employer))
    if reserve is None:
        reserve = FoundingReserve(employer_code=employer)
        uow.add(reserve)
    reserve.check_no_union()  # its levy is shared out as a normal levy instead
    reserve.hold(
        voucher_id=str(voucher.id), holder_code=receiver.code, period=str(month), amount=money
    )
    return voucher_view(voucher)


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordRemittance(Command):
    """上解 (upward) or 回拨 (pass_down): clears what the payer owes towards the receiver."""

    NAME = "record_remittance"
    from_organization_code: str
    to_organization_code: str
    kind: str
    amount: str
    period: str
    paid_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        payer = uow.org(self.from_organization_code, field="from_organization_code")
        if self.to_organization_code in SHARE_LEVELS:
            return self.above_the_root(uow, payer)
        receiver = uow.org(self.to_organization_code, field="to_organization_code")
        if self.kind not in ("upward", "pass_down"):
            raise InvalidValue("kind", "kind is upward or pass_down")
        money = Money.parse_positive(self.amount)
        month = Month.parse(self.period)
        day = parse_date(self.paid_on, field="paid_on")
        upward = self.kind == "upward"
        if upward and payer.parent_on(day) != receiver.code:
            raise InvalidValue("to_organization_code", "upward remittances go to the parent")
        if not upward and receiver.parent_on(day) != payer.code:
            raise InvalidValue("to_organization_code", "a pass-down goes to a direct child")
        owed = owed_towards(uow, payer, receiver, upward, day)
        owed_total = sum(m.fen for _, _, m in owed)
        if money.fen > owed_total:
            raise RemittanceExceedsOwed(
                f"{payer.code} owes {receiver.code} {Money(owed_total)} on "
                f"{PAYABLE_UP if upward else PAYABLE_DOWN}; {money} is more"
            )
        parts = divide_owed(money, owed)
        postings = remittance_postings(payer.code, receiver.code, parts, upward=upward)
        details = {"kind": self.kind, "period": str(month), "parts": {c: str(m) for c, m in parts}}
        return voucher_view(uow.post("remittance", day, postings, details))

    def above_the_root(self, uow: UnitOfWork, payer: Organization) -> dict[str, Any]:
        """The root pays what it owes a level outside the deployment (`national`, say) to
        that level by name: Dr 211 towards it, Cr 102. Nothing is booked on the other side."""
        level = self.to_organization_code
        if self.kind != "upward":
            raise InvalidValue("kind", "a level above the deployment is paid upward")
        money = Money.parse_positive(self.amount)
        month = Month.parse(self.period)
        day = parse_date(self.paid_on, field="paid_on")
        if payer.parent_on(day) is not None:
            raise InvalidValue(
                "to_organization_code",
                f"only the deployment's root pays a level above it by name; {payer.code} "
                "pays its parent",
            )
        if level_rank(level) <= payer.rank:
            raise InvalidValue("to_organization_code", f"{level} is not above {payer.level}")
        owed = uow.book(payer.code).owed(PAYABLE_UP, on=day).get(level, Money(0))
        if money.fen > owed.fen:
            raise RemittanceExceedsOwed(
                f"{payer.code} owes {level} {owed} on {PAYABLE_UP}; {money} is more"
            )
        postings = [
            debit(payer.code, PAYABLE_UP, money, counterparty=level),
            credit(payer.code, BANK, money),
        ]
        details = {"kind": "upward", "period": str(month), "parts": {level: str(money)}}
        return voucher_view(uow.post("remittance", day, postings, details))


def owed_towards(
    uow: UnitOfWork, payer: Organization, receiver: Organization, upward: bool, day: Any
) -> list[tuple[int, str, Money]]:
    """What payer owes to receiver and the levels beyond it, by counterparty, with ranks."""
    book = uow.book(payer.code)
    owed = book.owed(PAYABLE_UP if upward else PAYABLE_DOWN, on=day)
    result = []
    if upward:
        beyond = {receiver.code: receiver.rank}
        beyond.update({a.code: a.rank for a in uow.ancestors(receiver, day)})
        for counterparty, money in owed.items():
            if counterparty in SHARE_LEVELS:
                result.append((level_rank(counterparty), counterparty, money))
            elif counterparty in beyond:
                result.append((beyond[counterparty], counterparty, money))
    else:
        for counterparty, money in owed.items():
            if counterparty in SHARE_LEVELS:
                continue
            org = uow.org(counterparty)
            chain = [org.code] + [a.code for a in uow.ancestors(org, day)]
            if receiver.code in chain:
                result.append((org.rank, counterparty, money))
    return [r for r in result if r[2].fen > 0]


@dataclass(frozen=True, kw_only=True, eq=False)
class PaySubsidy(Command):
    """补助: to a real-name member (帮扶, 助学, 劳模, 托育, 慰问) or to a lower union."""

    NAME = "pay_subsidy"
    payer_organization_code: str
    recipient: dict[str, str]
    programme: str
    amount: str
    earmarked: bool
    approval_ref: str
    paid_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        payer = uow.org(self.payer_organization_code, field="payer_organization_code")
        payer.require_active("paying organisation")
        if self.programme not in PROGRAMMES:
            raise InvalidValue("programme", f"programme is one of {', '.join(PROGRAMMES)}")
        money = Money.parse_positive(self.amount)
        flag = parse_flag(self.earmarked, "earmarked")
        reference = parse_text(self.approval_ref, "approval_ref", 64)
        day = parse_date(self.paid_on, field="paid_on")
        recipient = self.recipient
        if not isinstance(recipient, dict) or len(recipient) != 1:
            raise InvalidValue("recipient", "recipient is {member_id} or {organization_code}")
        details: dict[str, Any] = {"programme": self.programme, "approval_ref": reference}
        if "member_id" in recipient:
            member = uow.member(recipient["member_id"], field="recipient.member_id")
            if not member.is_member:
                raise InvalidStatus("the recipient is no longer a member")
            home = uow.org(member.organization_code)
            if payer.code not in [home.code] + [a.code for a in uow.ancestors(home)]:
                raise InvalidValue("recipient.member_id", f"not a member under {payer.code}")
            details["member_id"] = str(member.id)
            details.update(register_entry(uow, self.programme, member, day))
            postings = person_subsidy_postings(
                payer.code, PROGRAMME_ACCOUNTS[self.programme], money, flag
            )
        elif "organization_code" in recipient:
            target = uow.org(recipient["organization_code"], field="recipient.organization_code")
            target.require_active("recipient organisation")
            if payer.code not in [a.code for a in uow.ancestors(target)]:
                raise InvalidValue("recipient.organization_code", f"not a union below {payer.code}")
            details["organization_code"] = target.code
            postings = union_subsidy_postings(payer.code, target.code, money, flag)
        else:
            raise InvalidValue("recipient", "recipient is {member_id} or {organization_code}")
        return voucher_view(uow.post("subsidy", day, postings, details))


@dataclass(frozen=True, kw_only=True, eq=False)
class RecordExpense(Command):
    """支出: Dr an expenditure account, Cr 102."""

    NAME = "record_expense"
    organization_code: str
    account_code: str
    amount: str
    earmarked: bool
    description: str
    paid_on: Any

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.organization_code, field="organization_code")
        org.require_active()
        acct = expense_account(self.account_code)
        money = Money.parse_positive(self.amount)
        flag = parse_flag(self.earmarked, "earmarked")
        text = parse_text(self.description, "description", MAX_TEXT_LENGTH)
        day = parse_date(self.paid_on, field="paid_on")
        postings = expense_postings(org.code, acct.code, money, flag)
        return voucher_view(uow.post("expense", day, postings, {"description": text}))


@dataclass(frozen=True, kw_only=True, eq=False)
class ReverseVoucher(Command):
    """红字冲销: a new voucher that takes the original's postings back."""

    NAME = "reverse_voucher"
    voucher_id: str
    effective_on: Any
    reason: str

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        original = voucher_in(uow, self.voucher_id)
        # Named first: a second reversal is AlreadyReversed, not whatever its postings hit.
        original.check_reversible()
        day = parse_date(self.effective_on, field="effective_on")
        text = parse_text(self.reason, "reason", MAX_TEXT_LENGTH)
        if day < original.effective_on:
            raise InvalidValue("effective_on", "a reversal cannot predate the voucher")
        if original.kind == "year_end":
            raise InvalidStatus("a year-end close is taken back by reopening December")
        if original.kind == "founding_reserve_release":
            raise InvalidStatus("a shared-out founding reserve cannot be reversed")
        if original.kind == "founding_reserve":
            reserve = uow.get(FoundingReserve.id_for(original.details["employer_code"]))
            if reserve is None or str(original.id) not in reserve.held:
                raise InvalidStatus("this founding reserve was already shared out")
            reserve.withdraw(str(original.id))
        return voucher_view(post_reversal(uow, original, day, text))


def post_reversal(uow: UnitOfWork, original: Voucher, day: Any, reason: str) -> Voucher:
    """红字冲销 of original, dated day, and the link from the original to it."""
    reversal = uow.post(
        "reversal",
        day,
        [p.red_ink() for p in original.postings],
        {"reason": reason, "reverses_kind": original.kind},
        reverses=str(original.id),
    )
    original.mark_reversed(str(reversal.id))
    return reversal


@dataclass(frozen=True, kw_only=True, eq=False)
class ClosePeriod(Command):
    """月结: months close in order, each once it has ended (in China); nothing may then be
    posted in or before it."""

    NAME = "close_period"
    organization_code: str
    period: str

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.organization_code)
        month = Month.parse(self.period)
        book = uow.book(org.code)
        today = today_in_china()
        book.check_can_close(month, today)
        answer: dict[str, Any] = {"organization_code": org.code, "period": str(month)}
        year_end = None
        if month.month == 12:
            # 年终结账: the year's income and expenditure into 321/322, dated 31 December.
            postings = year_end_postings(org.code, book.results_through(month.year))
            if postings:
                year_end = uow.post("year_end", month.last_day, postings, {"year": month.year})
        book.close_month(month, today, year_end_voucher=str(year_end.id) if year_end else None)
        answer["closed"] = True
        if month.month == 12:
            answer["year_end_voucher_id"] = str(year_end.id) if year_end else None
        return answer


@dataclass(frozen=True, kw_only=True, eq=False)
class ReopenPeriod(Command):
    """反结账: an admin reopens the last closed month, with a reason."""

    NAME = "reopen_period"
    organization_code: str
    period: str
    reason: str

    def decide(self, uow: UnitOfWork) -> dict[str, Any]:
        org = uow.org(self.organization_code)
        month = Month.parse(self.period)
        text = parse_text(self.reason, "reason", MAX_TEXT_LENGTH)
        book = uow.book(org.code)
        year_end = book.year_end_voucher(month)
        book.reopen_month(month, text)
        answer: dict[str, Any] = {"organization_code": org.code, "period": str(month)}
        if year_end is not None:
            # Reopening December takes the year-end close back first (红字冲销 on 31 Dec).
            reversal = post_reversal(uow, voucher_in(uow, year_end), month.last_day, text)
            answer["year_end_reversal_id"] = str(reversal.id)
        answer["closed"] = False
        return answer
