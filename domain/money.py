"""Money (人民币金额): integer fen, exact decimal strings on the wire, never a float."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from domain.base import value_type
from domain.errors import InvalidValue

# At most 2 decimals, ASCII digits only; an optional leading minus for internal use (reversals).
_AMOUNT_PATTERN = re.compile(r"^(-?)(0|[1-9][0-9]{0,15})(?:\.([0-9]{1,2}))?$")

# 10^16 fen is far above any union's books, and keeps every sum inside int64 for the databases.
MAX_FEN = 10**16


@value_type
@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount of yuan held as a whole number of fen (分)."""

    fen: int

    def __post_init__(self) -> None:
        if isinstance(self.fen, bool) or not isinstance(self.fen, int):
            raise TypeError(f"Money needs an int of fen, got {type(self.fen).__name__}")
        if abs(self.fen) >= MAX_FEN:
            raise InvalidValue("amount", "amount is too large")

    @classmethod
    def parse(cls, text: str, *, field: str = "amount") -> Money:
        """Parses "1234.5" or "1234.50"; rejects floats, exponents, separators, >2 decimals."""
        if not isinstance(text, str):
            raise InvalidValue(field, 'an amount must be a decimal string such as "1234.50"')
        # fullmatch, not match: "$" would also accept a trailing newline ("1.00\n").
        match = _AMOUNT_PATTERN.fullmatch(text)
        if match is None:
            raise InvalidValue(
                field, f"{text[:40]!r} is not an amount: use digits with at most two decimals"
            )
        sign, whole, decimals = match.groups()
        fen = int(whole) * 100 + int((decimals or "").ljust(2, "0"))
        if fen >= MAX_FEN:
            raise InvalidValue(field, "amount is too large")
        return cls(-fen if sign else fen)

    @classmethod
    def parse_positive(cls, text: str, *, field: str = "amount") -> Money:
        money = cls.parse(text, field=field)
        if money.fen <= 0:
            raise InvalidValue(field, "amount must be greater than zero")
        return money

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    @classmethod
    def from_decimal_half_up(cls, yuan: Decimal | Fraction) -> Money:
        """Rounds an exact yuan value to the fen, half away from zero (四舍五入)."""
        # Exact rational arithmetic: Decimal division and multiplication round to the context's
        # 28 digits first, which can turn 0.00499999...9 (more digits) into a half and round it up.
        exact_fen = Fraction(yuan) * 100
        fen = math.floor(abs(exact_fen) + Fraction(1, 2))
        return cls(fen if exact_fen >= 0 else -fen)

    def __str__(self) -> str:
        sign = "-" if self.fen < 0 else ""
        whole, cents = divmod(abs(self.fen), 100)
        return f"{sign}{whole}.{cents:02d}"

    def __add__(self, other: Money) -> Money:
        return Money(self.fen + other.fen)

    def __sub__(self, other: Money) -> Money:
        return Money(self.fen - other.fen)

    def __neg__(self) -> Money:
        return Money(-self.fen)

    def is_zero(self) -> bool:
        return self.fen == 0


def total(amounts: list[Money] | tuple[Money, ...]) -> Money:
    return Money(sum(a.fen for a in amounts))
