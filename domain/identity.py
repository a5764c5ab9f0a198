"""Identity numbers (居民身份证号) and unified social credit codes (统一社会信用代码)."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from domain.errors import InvalidValue
from domain.privacy import mask_id_number

_ID_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")
# The earliest birth year a living member can have; rejects obviously corrupted numbers.
_EARLIEST_BIRTH_YEAR = 1900
# GB/T 2260 has had about 6,900 codes (stdnum's cn/loc): the real ones all fit, while made-up
# codes sent by clients cannot grow the cache past this.
DIVISION_CACHE = 8192


@lru_cache(maxsize=DIVISION_CACHE)
def _known_division(code: str) -> bool:
    """True when the 6-digit division code exists in GB/T 2260 at any time.

    stdnum's own ric.validate() also demands that the county existed in the birth year;
    many county codes are younger than the people holding them, so that check is skipped.
    """
    info = {k: v for _, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    return "province" in info and "county" in info


@lru_cache(maxsize=DIVISION_CACHE)
def _known_province(code: str) -> bool:
    """True when the 2-digit province code exists (cached: a lookup in stdnum's database
    costs more than everything else in parsing a number)."""
    info = {k: v for _, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    return "province" in info


def _birth_date(number: str) -> datetime.date:
    """Digits 7-14 as a date (what stdnum's ric.get_birth_date reads, without its generic
    cleaning of the number, which cost more than the rest of parsing it); ValueError if
    they are not a date."""
    return datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


@dataclass(frozen=True, slots=True)
class IdNumber:
    """居民身份证号: an 18-character resident identity number, validated on construction."""

    value: str

    @classmethod
    def parse(cls, text: str, *, field: str = "id_number") -> IdNumber:
        if not isinstance(text, str):
            raise InvalidValue(field, "an identity number must be a string of 18 characters")
        number = text.strip().upper()
        if len(number) != 18:
            raise InvalidValue(field, f"an identity number has 18 characters, not {len(number)}")
        if not _ID_PATTERN.match(number):
            raise InvalidValue(field, "an identity number is 17 digits and a digit or X")
        if ric.calc_check_digit(number) != number[-1]:
            raise InvalidValue(field, "the check character of the identity number is wrong")
        try:
            birth = _birth_date(number)
        except ValueError:
            raise InvalidValue(
                field, "the birth date in the identity number is not a date"
            ) from None
        if birth.year < _EARLIEST_BIRTH_YEAR:
            raise InvalidValue(field, "the birth year in the identity number is implausible")
        if not _known_province(number[:2]) or not _known_division(number[:6]):
            raise InvalidValue(field, "the region code in the identity number does not exist")
        return cls(number)

    @property
    def birth_date(self) -> datetime.date:
        return _birth_date(self.value)

    @property
    def sex(self) -> str:
        """'male' or 'female': the 17th digit is odd for men, even for women."""
        return "male" if int(self.value[16]) % 2 == 1 else "female"

    @property
    def region_code(self) -> str:
        return self.value[:6]

    def masked(self) -> str:
        """110105********002X: region kept, birth date and sequence hidden."""
        return mask_id_number(self.value)

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        # Never let a whole identity number reach a log through repr().
        return f"IdNumber({self.masked()!r})"


_MOBILE_PATTERN = re.compile(r"^1[3-9][0-9]{9}$")


def parse_mobile(text: str | None, *, field: str = "mobile") -> str | None:
    """An 11-digit mainland mobile number (手机号), or None."""
    if text is None:
        return None
    if not isinstance(text, str) or not _MOBILE_PATTERN.match(text.strip()):
        raise InvalidValue(field, "a mobile number is 11 digits starting with 13-19")
    return text.strip()


# What every stored credit code looks like (uscc.validate: eight digits, then ten characters of
# the code's alphabet), checked before a code from outside is used to look anything up.
_CREDIT_CODE_SHAPE = re.compile(r"[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}")


def has_credit_code_shape(text: object) -> bool:
    """Whether text could be a stored credit code (its shape only: no check character)."""
    return isinstance(text, str) and _CREDIT_CODE_SHAPE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class CreditCode:
    """统一社会信用代码: 18 characters with a verified check character."""

    value: str

    @classmethod
    def parse(cls, text: str, *, field: str = "code") -> CreditCode:
        if not isinstance(text, str):
            raise InvalidValue(field, "a credit code must be a string of 18 characters")
        code = text.strip().upper()
        if len(code) != 18:
            raise InvalidValue(field, f"a credit code has 18 characters, not {len(code)}")
        try:
            uscc.validate(code)
        except ValidationError as exc:
            raise InvalidValue(field, f"not a valid credit code ({exc})") from None
        return cls(code)

    @property
    def is_union(self) -> bool:
        """Registration authority 8 is the trade unions."""
        return self.value[0] == "8"

    @property
    def is_base_union(self) -> bool:
        return self.value[:2] == "81"

    @property
    def division_code(self) -> str:
        return self.value[2:8]

    def __str__(self) -> str:
        return self.value


def parse_region_code(
    text: str, *, field: str = "region_code", lengths: tuple[int, ...] = (6,)
) -> str:
    """An administrative division code (GB/T 2260) or a prefix of it."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise InvalidValue(field, "a region code is made of ASCII digits")
    if len(text) not in lengths:
        allowed = " or ".join(str(n) for n in lengths)
        raise InvalidValue(field, f"a region code here has {allowed} digits")
    if not _known_province(text[:2]):
        raise InvalidValue(field, f"{text[:2]} is not a province code")
    if len(text) == 6 and not _known_division(text):
        raise InvalidValue(field, f"{text} is not an administrative division code (GB/T 2260)")
    return text
