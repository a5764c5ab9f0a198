"""The unit of work: the aggregates one command loads or creates, saved together.

It reads aggregates from a source: the group-commit writer's view of its batch (each command
works on copies, service/group_commit.py), or the repository for a read outside a command.
It imports nothing of the write side above it, so that the writer, the commands and the
application all depend on it and it on none of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from domain.base import LedgerAggregate
from domain.errors import (
    InvalidValue,
    NotFound,
    TreeViolation,
)
from domain.identity import has_credit_code_shape
from domain.members import Member
from domain.organizations import Organization
from domain.policies import LevyPolicies
from domain.vouchers import (
    Book,
    Posting,
    Voucher,
    check_balanced,
    check_organization_may_post,
)
from storage.keys import MemberIds
from storage.random_bytes import random_uuid

MAX_TREE_DEPTH = 12  # national down to joint base is 7 levels; more means corrupt data


def as_uuid(value: Any) -> UUID | None:
    """An id as a client sent it, as a UUID; None if it is not one (any type, any text)."""
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None


def member_not_found(member_id: Any) -> NotFound:
    """The one answer for a member id that names no member, or none the caller may see."""
    return NotFound(f"member {str(member_id)[:40]} not found")


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command returns: its view, the position of its last event, and whether this
    is a replay of an earlier request with the same idempotency key."""

    body: dict[str, Any]
    position: int | None
    replayed: bool = False


class AggregateSource(Protocol):
    def copy_of(self, aggregate_id: UUID, *, snapshotted: bool = True) -> LedgerAggregate | None:
        """The aggregate as a copy the command may change (None if it does not exist).
        snapshotted=False: of a kind never snapshotted, read without asking for a snapshot
        (service/repository.py)."""


class RepositorySource:
    """Aggregates read through the repository (each get() gives a copy of its own)."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository

    def copy_of(self, aggregate_id: UUID, *, snapshotted: bool = True) -> LedgerAggregate | None:
        try:
            return self.repository.get(aggregate_id, snapshotted=snapshotted)
        except AggregateNotFoundError:
            return None


class UnitOfWork:
    """The aggregates one command has loaded or created; all are saved together."""

    def __init__(self, source: AggregateSource, member_ids: MemberIds) -> None:
        self.source = source
        self.member_ids = member_ids
        self.aggregates: dict[UUID, LedgerAggregate] = {}
        # The version each aggregate had when this command first saw it (0: created here).
        self.loaded_versions: dict[UUID, int] = {}

    def get(self, aggregate_id: UUID, *, snapshotted: bool = True) -> Any | None:
        """snapshotted=False for a member (never snapshotted): one query instead of two."""
        if aggregate_id in self.aggregates:
            return self.aggregates[aggregate_id]
        aggregate = self.source.copy_of(aggregate_id, snapshotted=snapshotted)
        if aggregate is None:
            return None
        self.aggregates[aggregate_id] = aggregate
        self.loaded_versions[aggregate_id] = aggregate.version
        return aggregate

    def add(self, aggregate: LedgerAggregate) -> None:
        self.aggregates[aggregate.id] = aggregate
        self.loaded_versions.setdefault(aggregate.id, 0)

    def new_event_keys(self) -> list[tuple[UUID, int]]:
        """(aggregate id, version) of every event this command created."""
        return [
            (aggregate_id, version)
            for aggregate_id, aggregate in self.aggregates.items()
            for version in range(self.loaded_versions[aggregate_id] + 1, aggregate.version + 1)
        ]

    def org(self, code: str, *, field: str | None = None) -> Organization:
        """An organisation by code. Named in a body field: 422; in the path: 404."""
        # The shape first: an id derived from any string a client sends would be cached
        # (domain.base.stable_id), and a long one costs memory for nothing.
        org = self.get(Organization.id_for(code)) if has_credit_code_shape(code) else None
        if org is None:
            if field is not None:
                raise InvalidValue(field, f"no organisation has code {str(code)[:40]!r}")
            raise NotFound(f"organisation {str(code)[:40]} not found")
        return org

    def member_id_for(self, id_number: str) -> UUID:
        """The member id of a person: a keyed hash of the identity number (storage/keys.py)."""
        return self.member_ids.for_id_number(id_number)

    def member(self, member_id: str, *, field: str | None = None) -> Member:
        uuid = as_uuid(member_id)
        member = self.get(uuid, snapshotted=False) if uuid is not None else None
        if not isinstance(member, Member):
            if field is not None:
                raise InvalidValue(field, f"no member has id {str(member_id)[:40]!r}")
            raise member_not_found(member_id)
        return member

    def book(self, organization_code: str) -> Book:
        book = self.get(Book.id_for(organization_code))
        if book is None:
            book = Book(organization_code=organization_code)
            self.add(book)
        return book

    def policies(self) -> LevyPolicies:
        policies = self.get(LevyPolicies.ID)
        if policies is None:
            policies = LevyPolicies()
            self.add(policies)
        return policies

    def ancestors(self, org: Organization, day: Any = None) -> list[Organization]:
        """The organisations above org, nearest first (as of day, or now)."""
        result: list[Organization] = []
        parent_code = org.parent_on(day) if day is not None else org.parent_code
        while parent_code is not None:
            if len(result) >= MAX_TREE_DEPTH:
                raise TreeViolation(f"the tree above {org.code} is deeper than {MAX_TREE_DEPTH}")
            parent = self.org(parent_code)
            result.append(parent)
            parent_code = parent.parent_on(day) if day is not None else parent.parent_code
        return result

    def post(
        self,
        kind: str,
        effective_on: Any,
        postings: list[Posting],
        details: dict[str, Any],
        reverses: str | None = None,
    ) -> Voucher:
        """Creates a voucher and records its postings in every organisation's book it touches.

        Each book checks its own rules (closed month, bank not below zero, payables not
        negative) before anything is recorded."""
        check_balanced(postings)
        codes = sorted({p.organization_code for p in postings})
        for code in codes:
            if has_credit_code_shape(code):
                org = self.org(code)
                # Closing or reversing what is already booked stays possible (an account
                # booked before the county-level rule existed must still close at year end).
                own = postings if kind not in ("year_end", "reversal") else []
                check_organization_may_post(code, org.level, org.founded_on, effective_on, own)
        voucher_id = random_uuid()
        # Each book numbers the voucher in its month (记字号) as it records it: the number is
        # part of the event, so numbers are gapless whatever races or crashes.
        numbers = {
            code: self.book(code).record(str(voucher_id), effective_on, postings) for code in codes
        }
        voucher = Voucher(
            id=voucher_id,
            kind=kind,
            effective_on=effective_on,
            postings=postings,
            details={**details, "numbers": numbers},
            reverses=reverses,
        )
        self.add(voucher)
        return voucher
