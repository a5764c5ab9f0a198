"""The registers behind the subsidies: hardship files (困难职工档案, 建档立卡) and model workers
(劳模名册).

A hardship file is opened by a union for one of its members. A person has at most one open file:
the files of a person are numbered 1, 2, ... and each one's id is derived from the member id and
its number (HardshipFile.id_for), so that two files opened at once for the same person are the
same new aggregate, a uniqueness violation in the event store, as two memberships of one person
are (domain/members.py). The file names no union of its own: it follows the person, whose
current union keeps it (a transfer moves it with the membership).

A model worker record is one person's, keyed by the member id derived from the identity number
(the same keyed id the roll uses, storage/keys.py), whether or not the person is a member: one
person is one id everywhere. It holds the honours awarded (劳动模范, 五一劳动奖章 ...) and its
revocation (撤销).

Payouts follow the registers: a hardship payout needs a file open on its date, a model-worker
payout a record with an honour awarded by then and not revoked (service/commands/registers.py).
"""

from __future__ import annotations

import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import InvalidStatus, InvalidValue, NotAMember, RuleViolation
from domain.members import Member
from domain.money import Money
from domain.organizations import Organization, parse_name

# 困难类别
CATEGORIES = {"deep": "深度困难", "relative": "相对困难", "sudden": "意外致困"}
# 致困原因
CAUSES = {
    "illness": "因病",
    "disability": "因残",
    "education": "因学",
    "accident": "因灾/意外",
    "unemployment": "失业",
    "other": "其他",
}
# Causes that tell of a person's health are shown only to tokens with the pii flag
# (domain/privacy.py HEALTH_CAUSES).
# 荣誉级别, highest first
LEVELS = {"national": "全国级", "provincial": "省部级", "city": "市级", "county": "县级"}

OPEN, CLOSED = "open", "closed"
MAX_HOUSEHOLD = 30
MAX_TEXT = 200
EARLIEST_AWARD_YEAR = 1950
LATEST_AWARD_YEAR = 2100
MAX_FILES_PER_PERSON = 1000  # a defect guard on the numbering walk, never reached by people


class FileAlreadyOpen(RuleViolation):
    """建档: a person has at most one open hardship file."""


class NotHomeUnion(RuleViolation):
    """A hardship file is opened by the person's own union, not another one."""


class NotOnRegister(RuleViolation):
    """A hardship or model-worker payout without a register entry valid on its date."""


def parse_category(value: Any, field: str = "category") -> str:
    if not isinstance(value, str) or value not in CATEGORIES:
        raise InvalidValue(field, f"category is one of {', '.join(CATEGORIES)}")
    return value


def parse_causes(value: Any, field: str = "causes") -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidValue(field, "causes is a non-empty list")
    for item in value:
        if not isinstance(item, str) or item not in CAUSES:
            raise InvalidValue(field, f"each cause is one of {', '.join(CAUSES)}")
    if len(set(value)) != len(value):
        raise InvalidValue(field, "a cause is named once")
    return [c for c in CAUSES if c in value]  # in the fixed order


def parse_household(value: Any, field: str = "household_size") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOUSEHOLD:
        raise InvalidValue(field, f"household_size is a whole number from 1 to {MAX_HOUSEHOLD}")
    return value


def parse_income(value: Any, field: str = "monthly_income_per_head") -> int:
    """Monthly income per head in fen (zero allowed, never negative)."""
    money = Money.parse(value, field=field)
    if money.fen < 0:
        raise InvalidValue(field, "income cannot be negative")
    return money.fen


def parse_reason(value: Any, field: str = "reason") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, "cannot be empty")
    if len(value) > MAX_TEXT:
        raise InvalidValue(field, f"at most {MAX_TEXT} characters")
    if any(not ch.isprintable() for ch in value):
        raise InvalidValue(field, "cannot contain control characters")
    return value.strip()


def parse_level(value: Any, field: str = "level") -> str:
    if not isinstance(value, str) or value not in LEVELS:
        raise InvalidValue(field, f"level is one of {', '.join(LEVELS)}")
    return value


def parse_year(value: Any, field: str = "awarded_year") -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not EARLIEST_AWARD_YEAR <= value <= LATEST_AWARD_YEAR
    ):
        raise InvalidValue(
            field, f"awarded_year is a year from {EARLIEST_AWARD_YEAR} to {LATEST_AWARD_YEAR}"
        )
    return value


def one_year_after(day: datetime.date) -> datetime.date:
    """The same day a year later (29 February: 28 February)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


@stable_topic("ledger:HardshipFile")
class HardshipFile(LedgerAggregate):
    """困难职工档案: one file of one person, from 建档 to 脱困."""

    @staticmethod
    def id_for(member_id: str, serial: int) -> UUID:
        return stable_id("hardship-file", f"{member_id}#{serial}")

    @event("Opened", topic="ledger:HardshipFile.Opened")
    def __init__(
        self,
        id: Any,
        member_id: str,
        serial: int,
        organization_code: str,
        category: str,
        causes: list[str],
        household_size: int,
        income_fen: int,
        opened_on: datetime.date,
    ) -> None:
        self.member_id = member_id
        self.serial = serial
        self.organization_code = organization_code  # the union that opened it
        self.category = category
        self.causes = list(causes)
        self.household_size = household_size
        self.income_fen = income_fen
        self.opened_on = opened_on
        self.last_reviewed_on: datetime.date | None = None
        self.reviews = 0
        self.status = OPEN
        self.closed_on: datetime.date | None = None
        self.close_reason: str | None = None
        self.last_paid_on: datetime.date | None = None

    @classmethod
    def open(
        cls,
        *,
        member: Member,
        organization: Organization,
        serial: int,
        category: Any,
        causes: Any,
        household_size: Any,
        monthly_income_per_head: Any,
        opened_on: datetime.date,
    ) -> HardshipFile:
        """建档. The person is a member of `organization` (the union opening the file)."""
        if not member.is_member:
            raise NotAMember("a hardship file is opened for a current member")
        if organization.code != member.organization_code:
            raise NotHomeUnion(
                "a hardship file is opened by the member's own union "
                f"({member.organization_code}), not by {organization.code}"
            )
        if opened_on < member.joined_on:
            raise InvalidValue("opened_on", f"the member joined on {member.joined_on}")
        return cls(
            id=cls.id_for(str(member.id), serial),
            member_id=str(member.id),
            serial=serial,
            organization_code=organization.code,
            category=parse_category(category),
            causes=parse_causes(causes),
            household_size=parse_household(household_size),
            income_fen=parse_income(monthly_income_per_head),
            opened_on=opened_on,
        )

    # --- queries ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def last_dated(self) -> datetime.date:
        return self.last_reviewed_on or self.opened_on

    def open_on(self, day: datetime.date) -> bool:
        """Whether the file is open on that day: opened by then and not closed by then."""
        return self.opened_on <= day and (self.closed_on is None or day < self.closed_on)

    def review_due(self) -> datetime.date:
        """年度复核: the latest day the next review is due."""
        return one_year_after(self.last_dated)

    # --- commands --------------------------------------------------------------------------

    def _require_open(self) -> None:
        if not self.is_open:
            raise InvalidStatus(f"the hardship file was closed on {self.closed_on}")

    def review(
        self,
        *,
        reviewed_on: datetime.date,
        category: Any,
        household_size: Any,
        monthly_income_per_head: Any,
    ) -> None:
        """年度复核: the new figures; the category is kept or changed."""
        self._require_open()
        if reviewed_on < self.last_dated:
            raise InvalidValue("reviewed_on", f"must not be before {self.last_dated}")
        self._reviewed(
            reviewed_on=reviewed_on,
            category=parse_category(category),
            household_size=parse_household(household_size),
            income_fen=parse_income(monthly_income_per_head),
        )

    @event("Reviewed", topic="ledger:HardshipFile.Reviewed")
    def _reviewed(
        self, reviewed_on: datetime.date, category: str, household_size: int, income_fen: int
    ) -> None:
        self.last_reviewed_on = reviewed_on
        self.reviews += 1
        self.category = category
        self.household_size = household_size
        self.income_fen = income_fen

    def close(self, *, closed_on: datetime.date, reason: Any) -> None:
        """脱困: the household is out of hardship. Not on or before a day a payout was made
        against the file: every payout keeps pointing to a file open on its date."""
        self._require_open()
        if closed_on < self.last_dated:
            raise InvalidValue("closed_on", f"must not be before {self.last_dated}")
        if self.last_paid_on is not None and closed_on <= self.last_paid_on:
            raise InvalidValue(
                "closed_on", f"a payout was made against this file on {self.last_paid_on}"
            )
        self._closed(closed_on=closed_on, reason=parse_reason(reason))

    def note_payout(self, paid_on: datetime.date) -> None:
        """A hardship payout made against the file (the voucher names the file)."""
        if not self.open_on(paid_on):
            raise NotOnRegister(f"the hardship file is not open on {paid_on}")
        self._payout_noted(paid_on=paid_on)

    @event("PayoutNoted", topic="ledger:HardshipFile.PayoutNoted")
    def _payout_noted(self, paid_on: datetime.date) -> None:
        if self.last_paid_on is None or paid_on > self.last_paid_on:
            self.last_paid_on = paid_on

    @event("Closed", topic="ledger:HardshipFile.Closed")
    def _closed(self, closed_on: datetime.date, reason: str) -> None:
        self.status = CLOSED
        self.closed_on = closed_on
        self.close_reason = reason


@stable_topic("ledger:ModelWorker")
class ModelWorker(LedgerAggregate):
    """劳模名册: one person's honours, by the keyed member id of the identity number."""

    @staticmethod
    def id_for(member_id: str) -> UUID:
        return stable_id("model-worker", str(member_id))

    @event("Registered", topic="ledger:ModelWorker.Registered")
    def __init__(
        self,
        id: Any,
        member_id: str,
        id_number: str,
        name: str,
        organization_code: str,
        honour: str,
        level: str,
        awarded_year: int,
    ) -> None:
        self.member_id = member_id
        self.id_number = id_number
        self.name = name
        self.organization_code = organization_code  # the union that keeps the record
        self.honours: list[dict[str, Any]] = []
        self._add(honour, level, awarded_year)
        self.revoked_on: datetime.date | None = None
        self.revoke_reason: str | None = None
        self.last_paid_on: datetime.date | None = None

    def _add(self, honour: str, level: str, awarded_year: int) -> None:
        self.honours.append({"honour": honour, "level": level, "awarded_year": awarded_year})

    @classmethod
    def register(
        cls,
        *,
        member_id: str,
        id_number: str,
        name: Any,
        organization: Organization,
        honour: Any,
        level: Any,
        awarded_year: Any,
    ) -> ModelWorker:
        organization.require_active()
        return cls(
            id=cls.id_for(member_id),
            member_id=member_id,
            id_number=id_number,
            name=parse_name(name),
            organization_code=organization.code,
            honour=parse_honour(honour),
            level=parse_level(level),
            awarded_year=parse_year(awarded_year),
        )

    @property
    def level(self) -> str:
        """The highest level of the honours held."""
        ranks = list(LEVELS)
        levels: list[str] = [h["level"] for h in self.honours]
        return min(levels, key=ranks.index)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_on is not None

    def valid_on(self, day: datetime.date) -> bool:
        """An honour awarded in day's year or before, and not revoked on or before day."""
        if self.revoked_on is not None and self.revoked_on <= day:
            return False
        return any(h["awarded_year"] <= day.year for h in self.honours)

    def add_honour(self, *, honour: Any, level: Any, awarded_year: Any) -> None:
        """Another honour for a person already on the register (a county model worker made a
        city one)."""
        if self.is_revoked:
            raise InvalidStatus(f"the model worker was revoked on {self.revoked_on}")
        honour, level, year = parse_honour(honour), parse_level(level), parse_year(awarded_year)
        if any(h["honour"] == honour and h["awarded_year"] == year for h in self.honours):
            raise InvalidStatus(f"{honour} ({year}) is already on the register for this person")
        self._honour_added(honour=honour, level=level, awarded_year=year)

    @event("HonourAdded", topic="ledger:ModelWorker.HonourAdded")
    def _honour_added(self, honour: str, level: str, awarded_year: int) -> None:
        self._add(honour, level, awarded_year)

    def revoke(self, *, revoked_on: datetime.date, reason: Any) -> None:
        """撤销: the honours are withdrawn from that day on."""
        if self.is_revoked:
            raise InvalidStatus(f"the model worker was revoked on {self.revoked_on}")
        first = min(h["awarded_year"] for h in self.honours)
        if revoked_on.year < first:
            raise InvalidValue("revoked_on", f"the first honour was awarded in {first}")
        if self.last_paid_on is not None and revoked_on <= self.last_paid_on:
            raise InvalidValue(
                "revoked_on", f"a model-worker payout was made on {self.last_paid_on}"
            )
        self._revoked(revoked_on=revoked_on, reason=parse_reason(reason))

    def note_payout(self, paid_on: datetime.date) -> None:
        """A model-worker payout made against the record (the voucher names it)."""
        if not self.valid_on(paid_on):
            raise NotOnRegister(f"the model worker is not on the register on {paid_on}")
        self._payout_noted(paid_on=paid_on)

    @event("PayoutNoted", topic="ledger:ModelWorker.PayoutNoted")
    def _payout_noted(self, paid_on: datetime.date) -> None:
        if self.last_paid_on is None or paid_on > self.last_paid_on:
            self.last_paid_on = paid_on

    @event("Revoked", topic="ledger:ModelWorker.Revoked")
    def _revoked(self, revoked_on: datetime.date, reason: str) -> None:
        self.revoked_on = revoked_on
        self.revoke_reason = reason


def parse_honour(value: Any, field: str = "honour") -> str:
    return parse_reason(value, field)[:MAX_TEXT]
