"""Levy policies (经费分成政策) as recorded data, versioned by region prefix and start date."""

from __future__ import annotations

import datetime
from fractions import Fraction
from uuid import UUID

from eventsourcing.domain import event

from domain.base import LedgerAggregate, stable_id, stable_topic
from domain.errors import AlreadyExists
from domain.levy import LevyPolicy, format_percent, select_policy


@stable_topic("ledger:LevyPolicies")
class LevyPolicies(LedgerAggregate):
    """The deployment's register of levy policies: few, small, and read on every levy."""

    ID = stable_id("levy-policies", "register")

    @staticmethod
    def create_id(**_: object) -> UUID:
        return LevyPolicies.ID

    @event("Opened", topic="ledger:LevyPolicies.Opened")
    def __init__(self) -> None:
        # "prefix|YYYY-MM-DD" -> {level: percentage string}
        self.policies: dict[str, dict[str, str]] = {}

    def adopt(self, policy: LevyPolicy) -> None:
        key = f"{policy.region_prefix}|{policy.effective_from.isoformat()}"
        if key in self.policies:
            raise AlreadyExists(
                f"a policy for region {policy.region_prefix} from {policy.effective_from} exists;"
                " record a new one with a later effective_from"
            )
        shares = {level: format_percent(pct) for level, pct in policy.shares.items()}
        self._adopted(
            region_prefix=policy.region_prefix,
            effective_from=policy.effective_from,
            shares=shares,
        )

    @event("Adopted", topic="ledger:LevyPolicies.Adopted")
    def _adopted(
        self, region_prefix: str, effective_from: datetime.date, shares: dict[str, str]
    ) -> None:
        self.policies[f"{region_prefix}|{effective_from.isoformat()}"] = shares

    def all(self) -> list[LevyPolicy]:
        result = []
        for key, shares in self.policies.items():
            prefix, day = key.split("|")
            result.append(
                LevyPolicy(
                    region_prefix=prefix,
                    effective_from=datetime.date.fromisoformat(day),
                    shares={level: Fraction(pct) for level, pct in shares.items()},
                )
            )
        return result

    def in_force(self, region_code: str, day: datetime.date) -> LevyPolicy:
        return select_policy(self.all(), region_code, day)
