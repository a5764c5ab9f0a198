"""Levy policy and fund commands (会费, 经费, 上解/回拨, 补助, 支出, 冲销, 月结)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.accounts import PAYABLE_DOWN, PAYABLE_UP, PROGRAMME_ACCOUNTS, expense_account
from domain.errors import (
    InvalidStatus,
    InvalidValue,
    NoLevyPolicy,
    NotFound,
    RemittanceExceedsOwed,
)
from domain.funds import (
    dues_for_wage,
    dues_postings,
    expense_postings,
    founding_reserve_postings,
    levy_postings,
    person_subsidy_postings,
    remittance_postings,
    union_subsidy_postings,
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
from domain.policies import LevyPolicies
from domain.reserves import FoundingReserve
from domain.vouchers import Book, Voucher
from service.idempotency import IdempotencyKey
from service.results import voucher_view
from service.unit_of_work import CommandResult, UnitOfWork

PROGRAMMES = tuple(PROGRAMME_ACCOUNTS)
MAX_DUES_LINES = 100_000
MAX_TEXT_LENGTH = 500




class FundCommands:
    """Command methods mixed into Ledger (service/application.py), which supplies _run."""

    # --- levy policies -------------------------------------------------------------------------

    def adopt_levy_policy(
        self, *, region_code: str, effective_from: Any, shares: dict[str, str],
        actor: str = "system", idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        request = dict(region_code=region_code, effective_from=effective_from, shares=shares)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            policy = LevyPolicy(
                region_prefix=parse_region_code(region_code, lengths=(2, 4, 6)),
                effective_from=parse_date(effective_from, field="effective_from"),
                shares=parse_shares(shares),
            )
            uow.policies().adopt(policy)
            return policy_view(policy)

        return self._run("adopt_levy_policy", request, idempotency, actor, decide)

    def levy_policy_in_force(self, region_code: str, on: Any) -> dict[str, Any]:
        region = parse_region_code(region_code, lengths=(2, 4, 6))
        day = parse_date(on, field="on")
        policies = UnitOfWork(self).get(LevyPolicies.ID)
        if policies is None:
            raise NotFound("no levy policy has been recorded")
        try:
            return policy_view(policies.in_force(region, day))
        except NoLevyPolicy as exc:
            raise NotFound(exc.message) from None

    # --- funds -----------------------------------------------------------------------------------

    def record_dues(
        self, *, organization_code: str, period: str, amount: str, received_on: Any,
        members: list[dict[str, Any]] | None = None, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """会费: 0.5% of each member's wage, kept whole by the base union (Dr 102, Cr 401)."""
        request = dict(organization_code=organization_code, period=period, amount=amount,
                       received_on=received_on, members=members)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code, field="organization_code")
            org.require_active()
            if not org.is_base:
                raise InvalidValue("organization_code", "dues are paid to a base union")
            month = Month.parse(period)
            money = Money.parse_positive(amount)
            day = parse_date(received_on, field="received_on")
            lines = self._dues_lines(uow, org, members, money) if members is not None else None
            details: dict[str, Any] = {"period": str(month)}
            if lines is not None:
                details["members"] = lines
            voucher = uow.post("dues", day, dues_postings(org.code, money), details)
            return voucher_view(voucher)

        return self._run("record_dues", request, idempotency, actor, decide)

    def _dues_lines(
        self, uow: UnitOfWork, org: Organization, members: list[dict[str, Any]], amount: Money
    ) -> list[dict[str, str]]:
        if not isinstance(members, list) or len(members) > MAX_DUES_LINES:
            raise InvalidValue("members", f"a list of at most {MAX_DUES_LINES} members")
        lines: list[dict[str, str]] = []
        seen: set[str] = set()
        total_fen = 0
        for i, line in enumerate(members):
            field = f"members[{i}]"
            if not isinstance(line, dict):
                raise InvalidValue(field, "each line has member_id, wage and amount")
            member = uow.member(line.get("member_id"), field=f"{field}.member_id")
            if str(member.id) in seen:
                raise InvalidValue(f"{field}.member_id", "a member appears twice")
            seen.add(str(member.id))
            if member.organization_code != org.code or not member.is_member:
                raise InvalidValue(f"{field}.member_id", f"not on the roll of {org.code}")
            if member.status == "retained":
                raise InvalidValue(f"{field}.member_id", "retained members pay no dues")
            wage = Money.parse_positive(line.get("wage"), field=f"{field}.wage")
            dues = Money.parse_positive(line.get("amount"), field=f"{field}.amount")
            if dues != dues_for_wage(wage):
                raise InvalidValue(
                    f"{field}.amount", f"0.5% of {wage} is {dues_for_wage(wage)}, not {dues}"
                )
            total_fen += dues.fen
            lines.append({"member_id": str(member.id), "wage": str(wage), "amount": str(dues)})
        if total_fen != amount.fen:
            raise InvalidValue("amount", f"the members' dues add up to {Money(total_fen)}")
        return lines

    def record_levy(
        self, *, receiving_organization_code: str, base_organization_code: str | None,
        employer_code: str, period: str, payroll_total: str, amount: str, channel: str,
        received_on: Any, actor: str = "system", idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """拨缴经费: 2% of payroll, shared up the tree by the policy in force."""
        request = dict(
            receiving_organization_code=receiving_organization_code,
            base_organization_code=base_organization_code, employer_code=employer_code,
            period=period, payroll_total=payroll_total, amount=amount, channel=channel,
            received_on=received_on,
        )

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            receiver = uow.org(receiving_organization_code, field="receiving_organization_code")
            receiver.require_active("receiving organisation")
            employer = CreditCode.parse(employer_code, field="employer_code")
            month = Month.parse(period)
            payroll = Money.parse_positive(payroll_total, field="payroll_total")
            money = Money.parse_positive(amount)
            if channel not in ("employer", "tax"):
                raise InvalidValue("channel", "channel is employer or tax")
            day = parse_date(received_on, field="received_on")
            if levy_due(payroll) != money:
                raise InvalidValue(
                    "amount", f"2% of payroll {payroll} is {levy_due(payroll)}, not {money}"
                )
            details = {"employer_code": employer.value, "period": str(month),
                       "payroll_total": str(payroll), "channel": channel,
                       "base_organization_code": base_organization_code}
            if base_organization_code is None:
                return self._hold_founding_reserve(uow, receiver, employer.value, month, money,
                                                   day, details)
            base = uow.org(base_organization_code, field="base_organization_code")
            if not base.is_base:
                raise InvalidValue("base_organization_code", "not a base or joint base union")
            base.require_active("base union")
            if base.level == "base" and base.employer_code != employer.value:
                raise InvalidValue(
                    "employer_code", f"{base.code} sits in employer {base.employer_code}"
                )
            path_orgs = [base, *uow.ancestors(base, day)]
            if channel == "employer" and receiver.code != base.code:
                raise InvalidValue(
                    "receiving_organization_code",
                    "through the employer channel the base union receives",
                )
            if channel == "tax" and receiver.code not in [o.code for o in path_orgs[1:]]:
                raise InvalidValue(
                    "receiving_organization_code",
                    "through the tax channel a union above the base union receives",
                )
            policy = uow.policies().in_force(base.region_code, month.first_day)
            shares = share_levy(money, policy.shares, [(o.level, o.code) for o in path_orgs])
            details["policy"] = policy_view(policy)
            voucher = uow.post("levy", day, levy_postings(receiver.code, receiver.rank, shares),
                               details)
            return voucher_view(voucher)

        return self._run("record_levy", request, idempotency, actor, decide)

    def _hold_founding_reserve(self, uow, receiver, employer, month, money, day, details):
        if receiver.is_base:
            raise InvalidValue(
                "receiving_organization_code", "a founding reserve is held by a higher union"
            )
        voucher = uow.post("founding_reserve", day,
                           founding_reserve_postings(receiver.code, employer, money), details)
        reserve = uow.get(FoundingReserve.id_for(employer))
        if reserve is None:
            reserve = FoundingReserve(employer_code=employer)
            uow.add(reserve)
        reserve.hold(voucher_id=str(voucher.id), holder_code=receiver.code, period=str(month),
                     amount=money)
        return voucher_view(voucher)

    def record_remittance(
        self, *, from_organization_code: str, to_organization_code: str, kind: str,
        amount: str, period: str, paid_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """上解 (upward) or 回拨 (pass_down): clears what the payer owes towards the receiver."""
        request = dict(from_organization_code=from_organization_code,
                       to_organization_code=to_organization_code, kind=kind, amount=amount,
                       period=period, paid_on=paid_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            payer = uow.org(from_organization_code, field="from_organization_code")
            receiver = uow.org(to_organization_code, field="to_organization_code")
            if kind not in ("upward", "pass_down"):
                raise InvalidValue("kind", "kind is upward or pass_down")
            money = Money.parse_positive(amount)
            month = Month.parse(period)
            day = parse_date(paid_on, field="paid_on")
            upward = kind == "upward"
            if upward and payer.parent_on(day) != receiver.code:
                raise InvalidValue("to_organization_code", "upward remittances go to the parent")
            if not upward and receiver.parent_on(day) != payer.code:
                raise InvalidValue("to_organization_code", "a pass-down goes to a direct child")
            owed = self._owed_towards(uow, payer, receiver, upward, day)
            owed_total = sum(m.fen for _, _, m in owed)
            if money.fen > owed_total:
                raise RemittanceExceedsOwed(
                    f"{payer.code} owes {receiver.code} {Money(owed_total)} on "
                    f"{PAYABLE_UP if upward else PAYABLE_DOWN}; {money} is more"
                )
            parts = divide_owed(money, owed)
            postings = remittance_postings(payer.code, receiver.code, parts, upward=upward)
            details = {"kind": kind, "period": str(month),
                       "parts": {c: str(m) for c, m in parts}}
            return voucher_view(uow.post("remittance", day, postings, details))

        return self._run("record_remittance", request, idempotency, actor, decide)

    def _owed_towards(self, uow, payer, receiver, upward, day) -> list[tuple[int, str, Money]]:
        """What payer owes to receiver and the levels beyond it, by counterparty, with ranks."""
        book = uow.book(payer.code)
        owed = book.owed(PAYABLE_UP if upward else PAYABLE_DOWN)
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

    def pay_subsidy(
        self, *, payer_organization_code: str, recipient: dict[str, str], programme: str,
        amount: str, earmarked: bool, approval_ref: str, paid_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """补助: to a real-name member (帮扶, 助学, 劳模, 托育, 慰问) or to a lower union."""
        request = dict(payer_organization_code=payer_organization_code, recipient=recipient,
                       programme=programme, amount=amount, earmarked=earmarked,
                       approval_ref=approval_ref, paid_on=paid_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            payer = uow.org(payer_organization_code, field="payer_organization_code")
            payer.require_active("paying organisation")
            if programme not in PROGRAMMES:
                raise InvalidValue("programme", f"programme is one of {', '.join(PROGRAMMES)}")
            money = Money.parse_positive(amount)
            flag = parse_flag(earmarked, "earmarked")
            reference = _text(approval_ref, "approval_ref", 64)
            day = parse_date(paid_on, field="paid_on")
            if not isinstance(recipient, dict) or len(recipient) != 1:
                raise InvalidValue("recipient", "recipient is {member_id} or {organization_code}")
            details: dict[str, Any] = {"programme": programme, "approval_ref": reference}
            if "member_id" in recipient:
                member = uow.member(recipient["member_id"], field="recipient.member_id")
                if not member.is_member:
                    raise InvalidStatus("the recipient is no longer a member")
                home = uow.org(member.organization_code)
                if payer.code not in [home.code] + [a.code for a in uow.ancestors(home)]:
                    raise InvalidValue("recipient.member_id", f"not a member under {payer.code}")
                details["member_id"] = str(member.id)
                postings = person_subsidy_postings(
                    payer.code, PROGRAMME_ACCOUNTS[programme], money, flag
                )
            elif "organization_code" in recipient:
                target_code = recipient["organization_code"]
                target = uow.org(target_code, field="recipient.organization_code")
                target.require_active("recipient organisation")
                if payer.code not in [a.code for a in uow.ancestors(target)]:
                    raise InvalidValue(
                        "recipient.organization_code", f"not a union below {payer.code}"
                    )
                details["organization_code"] = target.code
                postings = union_subsidy_postings(payer.code, target.code, money, flag)
            else:
                raise InvalidValue("recipient", "recipient is {member_id} or {organization_code}")
            return voucher_view(uow.post("subsidy", day, postings, details))

        return self._run("pay_subsidy", request, idempotency, actor, decide)

    def record_expense(
        self, *, organization_code: str, account_code: str, amount: str, earmarked: bool,
        description: str, paid_on: Any, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        request = dict(organization_code=organization_code, account_code=account_code,
                       amount=amount, earmarked=earmarked, description=description,
                       paid_on=paid_on)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code, field="organization_code")
            org.require_active()
            acct = expense_account(account_code)
            money = Money.parse_positive(amount)
            flag = parse_flag(earmarked, "earmarked")
            text = _text(description, "description", MAX_TEXT_LENGTH)
            day = parse_date(paid_on, field="paid_on")
            postings = expense_postings(org.code, acct.code, money, flag)
            return voucher_view(uow.post("expense", day, postings, {"description": text}))

        return self._run("record_expense", request, idempotency, actor, decide)

    def reverse_voucher(
        self, voucher_id: str, *, effective_on: Any, reason: str, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """红字冲销: a new voucher with the original's postings swapped."""
        request = dict(voucher_id=voucher_id, effective_on=effective_on, reason=reason)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            original = self._voucher(uow, voucher_id)
            # Named first: a second reversal is AlreadyReversed, not whatever its postings hit.
            original.check_reversible()
            day = parse_date(effective_on, field="effective_on")
            text = _text(reason, "reason", MAX_TEXT_LENGTH)
            if day < original.effective_on:
                raise InvalidValue("effective_on", "a reversal cannot predate the voucher")
            if original.kind == "founding_reserve_release":
                raise InvalidStatus("a shared-out founding reserve cannot be reversed")
            if original.kind == "founding_reserve":
                reserve = uow.get(FoundingReserve.id_for(original.details["employer_code"]))
                if reserve is None or str(original.id) not in reserve.held:
                    raise InvalidStatus("this founding reserve was already shared out")
                reserve.withdraw(str(original.id))
            reversal = uow.post(
                "reversal", day, [p.swapped() for p in original.postings],
                {"reason": text, "reverses_kind": original.kind}, reverses=str(original.id),
            )
            original.mark_reversed(str(reversal.id))
            return voucher_view(reversal)

        return self._run("reverse_voucher", request, idempotency, actor, decide)

    def _voucher(self, uow: UnitOfWork, voucher_id: str) -> Voucher:
        try:
            uuid = UUID(voucher_id)
        except (ValueError, TypeError, AttributeError):
            raise NotFound(f"voucher {str(voucher_id)[:40]} not found") from None
        voucher = uow.get(uuid)
        if not isinstance(voucher, Voucher):
            raise NotFound(f"voucher {voucher_id} not found")
        return voucher

    def get_voucher(self, voucher_id: str) -> dict[str, Any]:
        return voucher_view(self._voucher(UnitOfWork(self), voucher_id))

    def close_period(
        self, organization_code: str, *, period: str, actor: str = "system",
        idempotency: IdempotencyKey | None = None,
    ) -> CommandResult:
        """月结: the month takes no new postings dated inside it."""
        request = dict(organization_code=organization_code, period=period)

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            org = uow.org(organization_code)
            month = Month.parse(period)
            uow.book(org.code).close_month(month)
            return {"organization_code": org.code, "period": str(month), "closed": True}

        return self._run("close_period", request, idempotency, actor, decide)

    # --- state for checks and tests ------------------------------------------------------------

    def get_book(self, organization_code: str) -> Book | None:
        return UnitOfWork(self).get(Book.id_for(organization_code))


def policy_view(policy: LevyPolicy) -> dict[str, Any]:
    from domain.levy import format_percent

    return {
        "region_code": policy.region_prefix,
        "effective_from": policy.effective_from.isoformat(),
        "shares": {level: format_percent(pct) for level, pct in policy.shares.items()},
    }


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, "cannot be empty")
    if len(value) > limit:
        raise InvalidValue(field, f"at most {limit} characters")
    if any(not ch.isprintable() for ch in value):
        raise InvalidValue(field, "cannot contain control characters")
    return value.strip()
