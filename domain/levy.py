"""Levy sharing (工会经费分成): the policy in force, the path up the tree, exact rounding.

Everything here is pure: auditors recompute these numbers, so the rule is written once.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from domain.errors import InvalidValue, NoLevyPolicy
from domain.money import Money

# The six levels that share a levy, lowest first: the order that breaks rounding ties.
SHARE_LEVELS: tuple[str, ...] = ("base", "township", "county", "city", "province", "national")
# Organisation levels map onto share levels; a joint base union (联合基层工会) shares as a base.
ORG_LEVELS: tuple[str, ...] = (
    "national",
    "province",
    "city",
    "county",
    "township",
    "base",
    "joint_base",
)
_RANK = {level: rank for rank, level in enumerate(SHARE_LEVELS)} | {"joint_base": 0}

_PERCENT_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,2})(?:\.[0-9]{1,4})?$")
LEVY_RATE = Fraction(2, 100)


def level_rank(level: str) -> int:
    """0 for base and joint base unions, up to 5 for the national federation."""
    try:
        return _RANK[level]
    except KeyError:
        raise InvalidValue("level", f"{level!r} is not a union level") from None


def largest_remainder(amount_fen: int, weights: Sequence[Fraction | int]) -> list[int]:
    """Divides amount_fen in proportion to weights so that the parts add up exactly.

    Floor every exact part, then give one fen each to the largest fractional parts until the
    parts add up; ties go to the earlier weight (callers order weights lowest level first).
    """
    if amount_fen < 0:
        raise ValueError("largest_remainder divides non-negative amounts")
    total_weight = sum(Fraction(w) for w in weights)
    if total_weight <= 0:
        raise ValueError("weights must add up to more than zero")
    exact = [Fraction(amount_fen) * Fraction(w) / total_weight for w in weights]
    parts = [math.floor(e) for e in exact]
    left_over = amount_fen - sum(parts)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_remainder[:left_over]:
        parts[i] += 1
    assert sum(parts) == amount_fen, (amount_fen, weights, parts)
    return parts


def parse_shares(raw: dict[str, str], *, field: str = "shares") -> dict[str, Fraction]:
    """Percentages per level as decimal strings ("60", "12.5"), all six levels, summing to 100."""
    if not isinstance(raw, dict):
        raise InvalidValue(field, "shares map each level to a percentage string")
    unknown = sorted(set(raw) - set(SHARE_LEVELS))
    if unknown:
        raise InvalidValue(field, f"unknown levels {', '.join(unknown)}")
    missing = [level for level in SHARE_LEVELS if level not in raw]
    if missing:
        raise InvalidValue(field, f"missing levels {', '.join(missing)}")
    shares: dict[str, Fraction] = {}
    for level in SHARE_LEVELS:
        text = raw[level]
        if not isinstance(text, str) or not _PERCENT_PATTERN.fullmatch(text):
            raise InvalidValue(f"{field}.{level}", 'a percentage is a decimal string like "12.5"')
        shares[level] = Fraction(Decimal(text))
        if shares[level] > 100:
            raise InvalidValue(f"{field}.{level}", "a percentage is at most 100")
    if sum(shares.values()) != 100:
        total = Decimal(sum(shares.values()).numerator) / sum(shares.values()).denominator
        raise InvalidValue(field, f"percentages add up to {total}, not 100")
    return shares


def format_percent(value: Fraction) -> str:
    text = f"{Decimal(value.numerator) / Decimal(value.denominator):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class LevyPolicy:
    """分成比例: a region prefix (2, 4 or 6 digits), a start date, and a percentage per level."""

    region_prefix: str
    effective_from: datetime.date
    shares: dict[str, Fraction]

    def applies_to(self, region_code: str, period_start: datetime.date) -> bool:
        return region_code.startswith(self.region_prefix) and self.effective_from <= period_start


def select_policy(
    policies: Iterable[LevyPolicy], region_code: str, period_start: datetime.date
) -> LevyPolicy:
    """The longest matching prefix, then the latest start not after the period's first day."""
    candidates = [p for p in policies if p.applies_to(region_code, period_start)]
    if not candidates:
        raise NoLevyPolicy(
            f"no levy policy covers region {region_code} on {period_start.isoformat()}"
        )
    return max(candidates, key=lambda p: (len(p.region_prefix), p.effective_from))


@dataclass(frozen=True, slots=True)
class LevyShare:
    """One part of a levy: the level it belongs to and who is owed it.

    counterparty is the organisation's credit code, or the level's name (e.g. "national") when
    that level is above the deployment's root and so outside the ledger.
    """

    rank: int
    counterparty: str
    amount: Money

    @property
    def level(self) -> str:
        return SHARE_LEVELS[self.rank]


def share_levy(
    amount: Money, shares: dict[str, Fraction], path: Sequence[tuple[str, str]]
) -> list[LevyShare]:
    """Shares a levy among the path from the base union up to the deployment's root.

    path: (org level, credit code) from the base union upwards, ending at the root. A level
    with no organisation below the root adds its percentage to the next level up that has
    one; a level above the root stays owed to that level by name. Returns the non-zero
    shares, lowest level first, adding up to amount exactly.
    """
    if not path or level_rank(path[0][0]) != 0:
        raise ValueError("a levy path starts at a base union")
    present = {level_rank(level): code for level, code in path}
    if len(present) != len(path):
        raise ValueError("a levy path has at most one organisation per level")
    root_rank = max(present)
    weights: dict[str, Fraction] = {}
    ranks: dict[str, int] = {}
    for rank, level in enumerate(SHARE_LEVELS):
        if rank in present:
            target_rank, counterparty = rank, present[rank]
        elif rank < root_rank:
            target_rank = min(r for r in present if r > rank)
            counterparty = present[target_rank]
        else:
            target_rank, counterparty = rank, level
        weights[counterparty] = weights.get(counterparty, Fraction(0)) + shares[level]
        ranks[counterparty] = target_rank
    ordered = sorted((c for c in weights if weights[c] > 0), key=lambda c: ranks[c])
    exact_weights = [weights[c] for c in ordered]
    parts = largest_remainder(amount.fen, exact_weights)
    return [
        LevyShare(ranks[c], c, Money(fen)) for c, fen in zip(ordered, parts, strict=True) if fen > 0
    ]


def levy_due(payroll_total: Money) -> Money:
    """工会经费: 2% of the monthly payroll, rounded half-up to the fen."""
    return Money.from_decimal_half_up(Fraction(payroll_total.fen, 100) * LEVY_RATE)


def divide_owed(amount: Money, owed: Sequence[tuple[int, str, Money]]) -> list[tuple[str, Money]]:
    """Divides a partial remittance among counterparties in proportion to what each is owed.

    owed: (rank, counterparty, balance) with positive balances. Same largest-remainder rule as
    the levy itself, ties to the lower level first.
    """
    total_owed = sum(b.fen for _, _, b in owed)
    if amount.fen > total_owed:
        raise ValueError("cannot divide more than is owed")
    ordered = sorted(owed, key=lambda o: (o[0], o[1]))
    parts = largest_remainder(amount.fen, [b.fen for _, _, b in ordered])
    return [(c, Money(p)) for (_, c, _), p in zip(ordered, parts, strict=True) if p > 0]
