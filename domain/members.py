"""Members (会员) and their membership changes (会籍变化), under real-name registration (实名制).

One Member aggregate exists per natural person: its id is derived from the identity number
(by a keyed hash, see service/keys.py), so that a second membership for the same person is a
uniqueness violation in the event store rather than a race between two checks.
"""

from __future__ import annotations

import datetime
from typing import Any
from uuid import uuid4

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_topic
from domain.errors import (
    AlreadyMember,
    InvalidStatus,
    InvalidValue,
    NotFound,
    TransferPending,
)
from domain.identity import IdNumber, parse_mobile
from domain.organizations import Admissions, Organization, parse_name

# 会籍变化类型: the national change codes.
JOIN, TRANSFER_IN, RETAIN, TRANSFER_OUT, REMOVAL, WITHDRAWAL = 1, 2, 3, 4, 5, 6
CHANGE_CODES = {
    JOIN: "入会",
    TRANSFER_IN: "转入",
    RETAIN: "保留会籍",
    TRANSFER_OUT: "转出",
    REMOVAL: "除名",
    WITHDRAWAL: "退会",
}
# 会籍变化原因
REASON_CODES = {
    1: "劳动关系变更",
    2: "下岗待岗",
    3: "失业",
    4: "用人单位破产",
    5: "本人申请退会",
    6: "受刑事处罚被开除会籍",
    7: "退休",
}
# Which reasons fit which change (a transfer: labour relation changed; a retention: 1-4 or
# retired; a withdrawal: asked to leave; a removal: expelled after a criminal penalty).
FITTING_REASONS = {
    TRANSFER_OUT: frozenset({1}),
    RETAIN: frozenset({1, 2, 3, 4, 7}),
    WITHDRAWAL: frozenset({5}),
    REMOVAL: frozenset({6}),
}
MINIMUM_WORKING_AGE_YEARS = 16  # 《劳动法》: no employment below 16
MAX_NOTE_LENGTH = 500

ACTIVE, RETAINED, TRANSFER_PENDING, LEFT = "active", "retained", "transfer_pending", "left"


def parse_reason(value: Any, *, change_code: int, field: str = "reason_code") -> int:
    """A national reason code (会籍变化原因) that fits the change it is given for."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in REASON_CODES:
        raise InvalidValue(field, "reason_code is one of the national reason codes 1-7")
    fitting = FITTING_REASONS[change_code]
    if value not in fitting:
        raise InvalidValue(
            field,
            f"reason {value} ({REASON_CODES[value]}) does not fit change {change_code} "
            f"({CHANGE_CODES[change_code]}); it takes {', '.join(map(str, sorted(fitting)))}",
        )
    return value


def parse_flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(field, "must be true or false")
    return value


def _age_on(birth: datetime.date, day: datetime.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@stable_topic("ledger:Member")
class Member(LedgerAggregate):
    """会员: a person's real-name membership record, kept for life across rejoins."""

    # 2: the retention spans (dues are judged by the status in the dues month). A snapshot
    # of an older member lacks them: the repository replays such a member from its events.
    class_version = 2

    @event("Joined", topic="ledger:Member.Joined")
    def __init__(
        self,
        id: Any,
        id_number: str,
        name: str,
        mobile: str | None,
        migrant_worker: bool,
        new_employment_form: bool,
        organization_code: str,
        joined_on: datetime.date,
    ) -> None:
        self.id_number = id_number
        self.name = name
        self.mobile = mobile
        self.migrant_worker = migrant_worker
        self.new_employment_form = new_employment_form
        # [from, until) ISO dates of each retention (保留会籍); until None while it lasts.
        self.retained_spans: list[list[str | None]] = []
        self._start_membership(organization_code, joined_on)

    def _start_membership(self, organization_code: str, joined_on: datetime.date) -> None:
        self.status = ACTIVE
        self.organization_code = organization_code
        self.joined_on = joined_on
        self.pending_transfer: dict[str, Any] | None = None
        self.last_change_on = joined_on
        self.retention_reason: int | None = None

    def _end_retention(self, day: datetime.date) -> None:
        if self.retained_spans and self.retained_spans[-1][1] is None:
            self.retained_spans[-1][1] = day.isoformat()

    # --- queries -------------------------------------------------------------------------

    def retained_on(self, day: datetime.date) -> bool:
        """Whether the member was retained (保留会籍) on that day."""
        text = day.isoformat()
        return any(
            start is not None and start <= text and (end is None or text < end)
            for start, end in self.retained_spans
        )

    @property
    def identity(self) -> IdNumber:
        return IdNumber(self.id_number)

    @property
    def is_member(self) -> bool:
        return self.status != LEFT

    def _require_on_or_after_last_change(self, day: datetime.date, field: str) -> None:
        if day < self.last_change_on:
            raise InvalidValue(
                field, f"must not be before the last membership change ({self.last_change_on})"
            )

    def _require_status(self, *allowed: str) -> None:
        if self.status == TRANSFER_PENDING and TRANSFER_PENDING not in allowed:
            raise TransferPending("a transfer is pending: accept or cancel it first")
        if self.status not in allowed:
            raise InvalidStatus(f"the member is {self.status}; this needs {' or '.join(allowed)}")

    # --- commands --------------------------------------------------------------------------

    @classmethod
    def join(
        cls,
        *,
        member_id: Any,
        id_number: IdNumber,
        name: str,
        mobile: str | None,
        migrant_worker: bool,
        new_employment_form: bool,
        organization: Organization,
        joined_on: datetime.date,
        admissions: Admissions | None = None,
    ) -> Member:
        """入会: the first membership of a person. With admissions (a roster import), the union
        records the admission together with the others of the command."""
        fields = cls.joined_fields(
            id_number=id_number,
            name=name,
            mobile=mobile,
            migrant_worker=migrant_worker,
            new_employment_form=new_employment_form,
            organization=organization,
            joined_on=joined_on,
        )
        member = cls(id=member_id, **fields)
        _admit(organization, admissions, str(member.id), joined_on)
        return member

    @staticmethod
    def joined_fields(
        *,
        id_number: IdNumber,
        name: str,
        mobile: str | None,
        migrant_worker: bool,
        new_employment_form: bool,
        organization: Organization,
        joined_on: datetime.date,
    ) -> dict[str, Any]:
        """The checked fields of a first join's Joined event, or the DomainError refusing it
        (checked in this order). join() and the roster import's bulk path
        (service/bulk_join.py) both take them from here."""
        _check_joining(id_number, organization, joined_on)
        return dict(
            id_number=id_number.value,
            name=parse_name(name),
            mobile=parse_mobile(mobile),
            migrant_worker=parse_flag(migrant_worker, "migrant_worker"),
            new_employment_form=parse_flag(new_employment_form, "new_employment_form"),
            organization_code=organization.code,
            joined_on=joined_on,
        )

    def rejoin(
        self,
        *,
        name: str,
        mobile: str | None,
        migrant_worker: bool,
        new_employment_form: bool,
        organization: Organization,
        joined_on: datetime.date,
        admissions: Admissions | None = None,
    ) -> None:
        """入会 again after withdrawal or removal (admissions: as for join)."""
        if self.is_member:
            raise AlreadyMember(
                "this person is already a member of a union",
                organization_code=self.organization_code,
                status=self.status,
            )
        _check_joining(self.identity, organization, joined_on)
        self._require_on_or_after_last_change(joined_on, "joined_on")
        self._rejoined(
            name=parse_name(name),
            mobile=parse_mobile(mobile),
            migrant_worker=parse_flag(migrant_worker, "migrant_worker"),
            new_employment_form=parse_flag(new_employment_form, "new_employment_form"),
            organization_code=organization.code,
            joined_on=joined_on,
        )
        _admit(organization, admissions, str(self.id), joined_on)

    @event("Rejoined", topic="ledger:Member.Rejoined")
    def _rejoined(
        self,
        name: str,
        mobile: str | None,
        migrant_worker: bool,
        new_employment_form: bool,
        organization_code: str,
        joined_on: datetime.date,
    ) -> None:
        self.name = name
        self.mobile = mobile
        self.migrant_worker = migrant_worker
        self.new_employment_form = new_employment_form
        self._start_membership(organization_code, joined_on)

    def start_transfer(
        self, *, to_organization: Organization, effective_on: datetime.date, reason_code: int
    ) -> str:
        """转出: the releasing union starts a transfer; the member stays on its roll, pending."""
        self._require_status(ACTIVE)
        reason_code = parse_reason(reason_code, change_code=TRANSFER_OUT)
        self._require_on_or_after_last_change(effective_on, "effective_on")
        if to_organization.code == self.organization_code:
            raise InvalidValue("to_organization_code", "the member is already in that union")
        to_organization.require_active("receiving organisation")
        if not to_organization.is_base:
            raise InvalidValue(
                "to_organization_code", "a transfer goes to a base or joint base union"
            )
        transfer_id = str(uuid4())
        self._transfer_started(
            transfer_id=transfer_id,
            to_organization_code=to_organization.code,
            effective_on=effective_on,
            reason_code=reason_code,
        )
        return transfer_id

    @event("TransferStarted", topic="ledger:Member.TransferStarted")
    def _transfer_started(
        self,
        transfer_id: str,
        to_organization_code: str,
        effective_on: datetime.date,
        reason_code: int,
    ) -> None:
        self.status = TRANSFER_PENDING
        self.pending_transfer = {
            "transfer_id": transfer_id,
            "to_organization_code": to_organization_code,
            "effective_on": effective_on,
            "reason_code": reason_code,
        }
        self.last_change_on = effective_on

    def _require_pending(self, transfer_id: str) -> dict[str, Any]:
        if self.pending_transfer is None or self.pending_transfer["transfer_id"] != transfer_id:
            raise NotFound(f"no pending transfer {transfer_id} for this member")
        return self.pending_transfer

    def accept_transfer(
        self,
        *,
        transfer_id: str,
        releasing: Organization,
        receiving: Organization,
        effective_on: datetime.date,
    ) -> None:
        """转入: the receiving union accepts; the member moves to its roll."""
        pending = self._require_pending(transfer_id)
        assert receiving.code == pending["to_organization_code"]
        assert releasing.code == self.organization_code
        self._require_on_or_after_last_change(effective_on, "effective_on")
        receiving.admit_member(str(self.id), effective_on)
        releasing.release_member(str(self.id), effective_on)
        self._transfer_accepted(transfer_id=transfer_id, effective_on=effective_on)

    @event("TransferAccepted", topic="ledger:Member.TransferAccepted")
    def _transfer_accepted(self, transfer_id: str, effective_on: datetime.date) -> None:
        assert self.pending_transfer is not None
        self.organization_code = self.pending_transfer["to_organization_code"]
        self.pending_transfer = None
        self.status = ACTIVE
        self.last_change_on = effective_on

    def cancel_transfer(self, *, transfer_id: str) -> None:
        self._require_pending(transfer_id)
        self._transfer_cancelled(transfer_id=transfer_id)

    @event("TransferCancelled", topic="ledger:Member.TransferCancelled")
    def _transfer_cancelled(self, transfer_id: str) -> None:
        self.pending_transfer = None
        self.status = ACTIVE

    def retain(self, *, effective_on: datetime.date, reason_code: int) -> None:
        """保留会籍: retired, unemployed or laid-off members keep membership and pay no dues."""
        self._require_status(ACTIVE)
        reason_code = parse_reason(reason_code, change_code=RETAIN)
        self._require_on_or_after_last_change(effective_on, "effective_on")
        self._retained(effective_on=effective_on, reason_code=reason_code)

    @event("Retained", topic="ledger:Member.Retained")
    def _retained(self, effective_on: datetime.date, reason_code: int) -> None:
        self.retained_spans.append([effective_on.isoformat(), None])
        self.status = RETAINED
        self.retention_reason = reason_code
        self.last_change_on = effective_on

    def reinstate(self, *, effective_on: datetime.date) -> None:
        self._require_status(RETAINED)
        self._require_on_or_after_last_change(effective_on, "effective_on")
        self._reinstated(effective_on=effective_on)

    @event("Reinstated", topic="ledger:Member.Reinstated")
    def _reinstated(self, effective_on: datetime.date) -> None:
        self._end_retention(effective_on)
        self.status = ACTIVE
        self.retention_reason = None
        self.last_change_on = effective_on

    def exit(
        self,
        *,
        organization: Organization,
        effective_on: datetime.date,
        change_code: int,
        reason_code: int,
    ) -> None:
        """除名 (5) or 退会 (6): the person leaves the roll and may join again later."""
        if change_code not in (REMOVAL, WITHDRAWAL) or isinstance(change_code, bool):
            raise InvalidValue("change_code", "an exit is 5 (除名) or 6 (退会)")
        self._require_status(ACTIVE, RETAINED)
        reason_code = parse_reason(reason_code, change_code=change_code)
        self._require_on_or_after_last_change(effective_on, "effective_on")
        assert organization.code == self.organization_code
        organization.release_member(str(self.id), effective_on)
        self._exited(effective_on=effective_on, change_code=change_code, reason_code=reason_code)

    @event("Exited", topic="ledger:Member.Exited")
    def _exited(self, effective_on: datetime.date, change_code: int, reason_code: int) -> None:
        self._end_retention(effective_on)
        self.status = LEFT
        self.retention_reason = None
        self.last_change_on = effective_on

    def correct(self, *, changes: dict[str, Any], note: str | None) -> None:
        """更正: fixes recorded personal details; the identity number itself never changes."""
        clean: dict[str, Any] = {}
        for field, value in changes.items():
            if field == "name":
                clean[field] = parse_name(value)
            elif field == "mobile":
                clean[field] = None if value in (None, "") else parse_mobile(value)
            elif field in ("migrant_worker", "new_employment_form"):
                clean[field] = parse_flag(value, field)
            else:
                raise InvalidValue(field, "this field cannot be corrected")
        if not clean:
            raise InvalidValue("body", "name, mobile, migrant_worker or new_employment_form")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH):
            raise InvalidValue("note", f"a note is text of at most {MAX_NOTE_LENGTH} characters")
        self._corrected(changes=clean, note=note)

    @event("Corrected", topic="ledger:Member.Corrected")
    def _corrected(self, changes: dict[str, Any], note: str | None) -> None:
        for field, value in changes.items():
            setattr(self, field, value)


def _check_joining(
    id_number: IdNumber, organization: Organization, joined_on: datetime.date
) -> None:
    if _age_on(id_number.birth_date, joined_on) < MINIMUM_WORKING_AGE_YEARS:
        raise InvalidValue(
            "joined_on",
            f"a member is at least {MINIMUM_WORKING_AGE_YEARS} years old on the joining date",
        )
    organization.require_active()
    if not organization.is_base:
        raise InvalidValue("organization_code", "members join a base or joint base union")
    if joined_on < organization.founded_on:
        # Checked before any event, so that a refused (re)join leaves nothing behind.
        raise InvalidValue(
            "joined_on", f"{organization.code} was founded on {organization.founded_on}"
        )


def _admit(
    organization: Organization,
    admissions: Admissions | None,
    member_id: str,
    joined_on: datetime.date,
) -> None:
    if admissions is None:
        organization.admit_member(member_id, joined_on)
    else:
        assert admissions.organization is organization
        admissions.admit(member_id, joined_on)
