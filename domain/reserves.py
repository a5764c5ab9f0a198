"""Founding reserves (建会筹备金): levy paid by an employer that has no union yet."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import AlreadyExists
from domain.money import Money


@stable_topic("ledger:FoundingReserve")
class FoundingReserve(LedgerAggregate):
    """The levies held for one employer by higher unions until a base union is founded there."""

    @staticmethod
    def id_for(employer_code: str) -> UUID:
        return stable_id("founding-reserve", employer_code)

    @staticmethod
    def create_id(employer_code: str, **_: object) -> UUID:
        return FoundingReserve.id_for(employer_code)

    @event("Opened", topic="ledger:FoundingReserve.Opened")
    def __init__(self, employer_code: str) -> None:
        self.employer_code = employer_code
        # Held levies not yet shared out: voucher id -> {holder, period, amount}.
        self.held: dict[str, dict[str, Any]] = {}
        # The employer's active base union, once one is founded (recorded since this rule).
        self.union_code: str | None = None

    def check_no_union(self) -> None:
        """An employer has at most one active base union, and no reserve once it has one."""
        if getattr(self, "union_code", None) is not None:
            raise AlreadyExists(
                f"employer {self.employer_code} already has a base union ({self.union_code})"
            )

    def union_founded(self, base_code: str) -> None:
        self.check_no_union()
        self._union_founded(base_code=base_code)

    @event("UnionFounded", topic="ledger:FoundingReserve.UnionFounded")
    def _union_founded(self, base_code: str) -> None:
        self.union_code = base_code

    def union_dissolved(self, base_code: str) -> None:
        if getattr(self, "union_code", None) == base_code:
            self._union_dissolved(base_code=base_code)

    @event("UnionDissolved", topic="ledger:FoundingReserve.UnionDissolved")
    def _union_dissolved(self, base_code: str) -> None:
        self.union_code = None

    def hold(self, *, voucher_id: str, holder_code: str, period: str, amount: Money) -> None:
        self._held(voucher_id=voucher_id, holder_code=holder_code, period=period, amount=amount)

    @event("Held", topic="ledger:FoundingReserve.Held")
    def _held(self, voucher_id: str, holder_code: str, period: str, amount: Money) -> None:
        self.held[voucher_id] = {"holder_code": holder_code, "period": period, "amount": amount}

    def release(self, *, held_voucher_id: str, release_voucher_id: str, base_code: str) -> None:
        self._released(
            held_voucher_id=held_voucher_id,
            release_voucher_id=release_voucher_id,
            base_code=base_code,
        )

    @event("Released", topic="ledger:FoundingReserve.Released")
    def _released(self, held_voucher_id: str, release_voucher_id: str, base_code: str) -> None:
        del self.held[held_voucher_id]

    def withdraw(self, held_voucher_id: str) -> None:
        """A reversed reserve levy is no longer held."""
        self._withdrawn(held_voucher_id=held_voucher_id)

    @event("Withdrawn", topic="ledger:FoundingReserve.Withdrawn")
    def _withdrawn(self, held_voucher_id: str) -> None:
        del self.held[held_voucher_id]
