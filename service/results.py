"""Plain, JSON-ready views of aggregates: what commands return and idempotency records keep.

Views are unmasked; masking personal data is the job of whoever shows them (api/, scripts/).
"""

from __future__ import annotations

from typing import Any

from domain.levy import LevyPolicy, format_percent
from domain.members import Member
from domain.organizations import Organization
from domain.vouchers import Posting, Voucher


def _iso(day: Any) -> str | None:
    return day.isoformat() if day is not None else None


def organization_view(org: Organization) -> dict[str, Any]:
    return {
        "code": org.code,
        "name": org.name,
        "level": org.level,
        "parent_code": org.parent_code,
        "region_code": org.region_code,
        "founded_on": _iso(org.founded_on),
        "employer_code": org.employer_code,
        "employee_count": org.employee_count,
        "status": org.status,
        "dissolved_on": _iso(org.dissolved_on),
        "member_count": org.member_count,
    }


def member_view(member: Member) -> dict[str, Any]:
    identity = member.identity
    pending = member.pending_transfer
    return {
        "member_id": str(member.id),
        "name": member.name,
        "id_number": member.id_number,
        "sex": identity.sex,
        "birth_year": identity.birth_date.year,
        "birth_date": _iso(identity.birth_date),
        "mobile": member.mobile,
        "status": member.status,
        "organization_code": member.organization_code,
        "joined_on": _iso(member.joined_on),
        "migrant_worker": member.migrant_worker,
        "new_employment_form": member.new_employment_form,
        "pending_transfer": None
        if pending is None
        else {
            "transfer_id": pending["transfer_id"],
            "to_organization_code": pending["to_organization_code"],
            "effective_on": _iso(pending["effective_on"]),
            "reason_code": pending["reason_code"],
        },
    }


def posting_view(p: Posting) -> dict[str, Any]:
    return {
        "organization_code": p.organization_code,
        "account_code": p.account_code,
        "debit": str(p.debit),
        "credit": str(p.credit),
        "earmarked": p.earmarked,
        "counterparty": p.counterparty,
    }


def voucher_view(v: Voucher) -> dict[str, Any]:
    return {
        "voucher_id": str(v.id),
        "kind": v.kind,
        "effective_on": _iso(v.effective_on),
        "numbers": dict(v.details.get("numbers", {})),
        "postings": [posting_view(p) for p in v.postings],
        "details": v.details,
        "reverses": v.reverses,
        "reversed_by": v.reversed_by,
    }


def policy_view(policy: LevyPolicy) -> dict[str, Any]:
    return {
        "region_code": policy.region_prefix,
        "effective_from": policy.effective_from.isoformat(),
        "shares": {level: format_percent(pct) for level, pct in policy.shares.items()},
    }
