"""个人信息脱敏: the one place where personal data is masked, for every output.

Identity numbers (居民身份证号), names and mobile numbers are personal information; whoever
shows data to a token without the pii flag passes it through mask() first: JSON answers,
CSV and XLSX exports, the audit event stream, error details. Masking holds as a whole:

- an identity number keeps its region and its last four characters (110105********002X);
  the eight hidden digits are the birth date, so `birth_date` is withheld (null) and only
  `birth_year` is given;
- a person's name keeps its first character (张*, 欧阳娜娜 -> 欧***);
- a mobile number keeps its first three and last four digits (138****5678);
- an identity or mobile number typed into free text (a description, a reason, a note, an
  approval reference, a union's name, an error message) is masked the same way;
- a hardship file's causes keep only those that say nothing of health (因病 and 因残 are left
  out), and a household's income per head is withheld.

Pure functions over JSON-ready values: no I/O, nothing of the ledger's own imported.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from typing import Any

from stdnum.cn import ric, uscc

# Keys whose presence says that an object describes a person: its `name` is a person's name.
PERSON_KEYS = frozenset({"id_number", "member_id"})
# Text people type, where an identity or mobile number may turn up. A union's `name` is free
# text too (masked as text, not as a person's name).
FREE_TEXT_KEYS = frozenset(
    {
        "note",
        "description",
        "reason",
        "purpose",
        "approval_ref",
        "title",
        "detail",
        "message",
        "decode_error",
        "subtitle",
        # Lines of the files a reconciliation reads (a bank's 摘要 and counterparty, a row that
        # could not be read): text written by others, where anything may turn up.
        "summary",
        "counterparty_account",
        "text",
    }
)
# A bank line's 对方户名 is a person's name when it looks like one: two to four Han characters
# (or a minority name with a middle dot) that no organisation's ending makes an organisation's.
_PERSON_NAME = re.compile(r"[\u4e00-\u9fff]{2,4}|[\u4e00-\u9fff]{1,8}[·•][\u4e00-\u9fff]{1,8}")
ORGANIZATION_ENDINGS = (
    "金库",
    "银行",
    "公司",
    "工会",
    "委员会",
    "中心",
    "局",
    "所",
    "院",
    "校",
    "厂",
    "店",
    "部",
    "社",
    "行",
    "会",
    "处",
    "站",
    "队",
    "馆",
    "园",
    "场",
    "室",
    "办",
    "厅",
    "团",
    "司",
    "府",
)
# A register's causes of hardship (困难职工档案) that tell of a person's health: left out of a
# masked answer. And the figures of a household's income: withheld (null).
HEALTH_CAUSES = frozenset({"illness", "disability"})
INCOME_KEYS = frozenset({"monthly_income_per_head", "income_fen"})
# A birth year this side of which an 18-digit run is taken for an identity number.
EARLIEST_BIRTH_YEAR, LATEST_BIRTH_YEAR = 1900, 2099

# 17 digits and a digit or X, alone or typed in groups (110105 19900307 123X, with spaces or
# hyphens), never part of a longer run of letters and digits (a UUID, a hash, a reference).
_ID_NUMBER_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])([0-9]{6})([ -]?)([0-9]{8})\2([0-9]{3}[0-9Xx])(?![0-9A-Za-z])"
)
# 11 digits from 13-19, optionally after +86/0086/86 and in groups (138 1234 5678).
_MOBILE_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])((?:(?:\+|00)?86[ -]?)?)(1[3-9][0-9])([ -]?)([0-9]{4})\3([0-9]{4})"
    r"(?![0-9A-Za-z])"
)


def mask_id_number(number: str) -> str:
    """110105199003071239 -> 110105********1239: the region and the last four stay."""
    if len(number) != 18:
        return "*" * len(number)
    return number[:6] + "*" * 8 + number[14:]


def mask_mobile(mobile: str | None) -> str | None:
    """13812345678 -> 138****5678."""
    if mobile is None:
        return None
    if len(mobile) < 8:
        return "*" * len(mobile)
    return mobile[:3] + "****" + mobile[-4:]


def mask_name(name: Any) -> Any:
    """张三 -> 张*, 欧阳娜娜 -> 欧***: the first character stays; a one-character name is *."""
    if not isinstance(name, str) or not name:
        return name
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


def _is_birth_date(digits: str) -> bool:
    """Whether eight digits read as a plausible birth date (YYYYMMDD)."""
    year = int(digits[:4])
    if not EARLIEST_BIRTH_YEAR <= year <= LATEST_BIRTH_YEAR:
        return False
    try:
        datetime.date(year, int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return True


def looks_like_id_number(candidate: str) -> bool:
    """Whether 18 characters typed into text are to be taken for an identity number.

    A birth date in digits 7-14 is what masking protects, so that decides, with or without
    a right check character (a mistyped number still shows a birth date). An 18-character
    unified social credit code (91330106..., 81110105...) is not a person's: it stays when
    its own check character is right and the identity-number one is not.
    """
    number = candidate.upper()
    if not _is_birth_date(number[6:14]):
        return False
    if ric.calc_check_digit(number) == number[-1]:
        return True
    return not uscc.is_valid(number)


def _mask_id_in_text(match: re.Match[str]) -> str:
    region, separator, birth, tail = match.groups()
    if not looks_like_id_number(region + birth + tail):
        return match.group(0)
    return f"{region}{separator}{'*' * 8}{separator}{tail}"


def _mask_mobile_in_text(match: re.Match[str]) -> str:
    prefix, head, separator, _, tail = match.groups()
    return f"{prefix}{head}{separator}****{separator}{tail}"


def mask_text(text: Any) -> Any:
    """Free text with every identity number and mobile number in it masked."""
    if not isinstance(text, str):
        return text
    text = _ID_NUMBER_IN_TEXT.sub(_mask_id_in_text, text)
    return _MOBILE_IN_TEXT.sub(_mask_mobile_in_text, text)


def mask_counterparty_name(text: str) -> str:
    """对方户名 on a bank statement: a person's name masked as a name, anything else as text."""
    name = text.strip()
    if _PERSON_NAME.fullmatch(name) and not name.endswith(ORGANIZATION_ENDINGS):
        return str(mask_name(name))
    return str(mask_text(text))


def birth_year(birth_date: Any) -> int | None:
    """The year of an ISO date (YYYY-MM-DD), what a masked output gives instead of it."""
    if isinstance(birth_date, str) and len(birth_date) >= 4 and birth_date[:4].isdigit():
        return int(birth_date[:4])
    return None


# The keys mask() may change the value of (its branches below); every other key's value is
# only walked into.
_KEYS_MASKED = (
    frozenset({"id_number", "mobile", "name", "birth_date", "causes", "counterparty_name"})
    | INCOME_KEYS
    | FREE_TEXT_KEYS
)
_SCALARS = frozenset((str, int, float, bool, type(None)))


def mask(value: Any, *, person: bool = False) -> Any:
    """A copy of JSON-ready data with every piece of personal data masked, at any depth.

    `person` says that value describes a person as a whole (the data of a member's own
    events): every `name` in it is then a person's. Elsewhere `name` is a person's name in an
    object with an id_number or a member_id beside it, and a union's name (free text) in any
    other object.
    """
    if isinstance(value, list | tuple):
        return [mask(item, person=person) for item in value]
    if not isinstance(value, dict):
        return value
    about_person = person or not PERSON_KEYS.isdisjoint(value)
    masked: dict[str, Any] = {}
    for key, item in value.items():
        if key not in _KEYS_MASKED:
            # Most keys (row numbers, ids, amounts, flags): a scalar as it is, without a call;
            # an answer of 100,000 roster rows holds 300,000 of them.
            masked[key] = item if type(item) in _SCALARS else mask(item, person=person)
        elif key == "id_number" and isinstance(item, str):
            masked[key] = mask_id_number(item)
        elif key == "mobile" and isinstance(item, str):
            masked[key] = mask_mobile(item)
        elif key == "name":
            masked[key] = mask_name(item) if about_person else mask_text(item)
        elif key == "birth_date":
            masked[key] = None
            if "birth_year" not in value:
                masked["birth_year"] = birth_year(item)
        elif key == "causes" and isinstance(item, list):
            masked[key] = [c for c in item if c not in HEALTH_CAUSES]
        elif key in INCOME_KEYS:
            masked[key] = None
        elif key in FREE_TEXT_KEYS and isinstance(item, str):
            masked[key] = mask_text(item)
        elif key == "counterparty_name" and isinstance(item, str):
            masked[key] = mask_counterparty_name(item)
        else:
            masked[key] = mask(item, person=person)
    return masked


def revealed_members(value: Any, masked: Any, member_ids: Iterable[str] = ()) -> list[str] | None:
    """The members whose read must be recorded (个人信息查阅) when value is answered as it is
    rather than as masked (mask(value)): every member_id in it, at any depth, and member_ids;
    None when masking would have hidden nothing, so that nothing is read."""
    if masked == value:
        return None
    found: set[str] = set(member_ids)
    _member_ids(value, found)
    return sorted(found)


def _member_ids(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        member_id = value.get("member_id")
        if isinstance(member_id, str):
            found.add(member_id)
        for item in value.values():
            _member_ids(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _member_ids(item, found)
