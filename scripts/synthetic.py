"""Valid synthetic identifiers for demos, benchmarks and tests (never real people or unions)."""

from __future__ import annotations

import datetime

from stdnum.cn import ric, uscc

_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100 characters (no I, O, S, V, Z)


def _org_part(serial: int) -> str:
    """Nine characters from a serial number, in the code's own alphabet."""
    chars = []
    for _ in range(9):
        serial, digit = divmod(serial, len(_ALPHABET))
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def union_code(region_code: str, serial: int, *, base: bool) -> str:
    """A union's credit code: 81 (base union) or 89 (others), the division, a serial."""
    body = ("81" if base else "89") + region_code + _org_part(serial)
    return body + uscc.calc_check_digit(body + "0")


def employer_code(region_code: str, serial: int) -> str:
    """An enterprise's credit code (registration authority 9, type 1)."""
    body = "91" + region_code + _org_part(serial)
    return body + uscc.calc_check_digit(body + "0")


def id_number(region_code: str, birth_date: datetime.date, sequence: int) -> str:
    """A resident identity number; sequence's parity gives the sex (odd: male)."""
    body = f"{region_code}{birth_date:%Y%m%d}{sequence % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")
