"""How much an uploaded table may cost to read, and the clock that bounds the time.

The figures in the comments were measured on a 100,000-row roster (member number, name,
date, mobile and two flags; "extra" adds six text columns such as department and address),
written by openpyxl (every text inline in the sheet) and laid out as Excel writes it (every
text in xl/sharedStrings.xml, dates as styled numbers). Each limit sits well above what such
a roster needs and far below what the bombs in tests/reliability/test_upload_bombs.py need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from domain.errors import ContentTooLarge

MiB = 1024 * 1024


@dataclass(frozen=True)
class TableLimits:
    # Data rows after the header. Blank rows count: they cost as much to read.
    max_rows: int = 100_000
    # Reading a 100,000-row roster takes 0.5 s (CSV) to 12 s (XLSX, extra columns) here.
    max_seconds: float = 120.0

    # CSV. The longest line of the extra roster has 160 characters, and 12 fields.
    max_record_chars: int = 65_536
    max_fields: int = 1_024

    # XLSX, the archive. The rosters have 7 to 9 members; their sheet expands to 24 MB
    # (Excel's layout) or 34 MB (openpyxl's), 41 and 70 MB with extra columns, the
    # shared strings to 7.5 MB; deflate shrank every member 1.4 to 9.3 times. A zip bomb
    # shrinks its member about 1,000 times.
    max_members: int = 256
    max_member_bytes: int = 256 * MiB
    max_total_bytes: int = 512 * MiB
    max_ratio: int = 100
    # Members that expand to less are too small to matter, whatever their ratio.
    ratio_floor_bytes: int = 1 * MiB

    # XLSX, the XML of the parts openpyxl reads (see xml_budget.py for what each counts).
    max_depth: int = 64
    max_token_bytes: int = 1 * MiB
    # Excel's own limit on the text of a cell.
    max_text_chars: int = 32_767
    # The elements and attributes of one row: a cell as Excel writes it is 3 to 5, so rows
    # of 13,000 cells and more fit (a roster has a few dozen columns at most).
    max_row_cost: int = 65_536
    # What openpyxl keeps for the whole read, in units of 60 to 90 bytes (xml_budget.py):
    # the Excel-layout roster needs 520,000 (its shared strings), 1,110,000 if every row had
    # its own height.
    max_kept_cost: int = 2_000_000


def mebibytes(size: int) -> str:
    return f"{size / MiB:,.1f} MiB" if size >= MiB else f"{size:,} bytes"


class Deadline:
    """The moment reading must have ended; checked between rows and between chunks."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise ContentTooLarge(
                "file", f"reading the file takes more than {self.seconds:g} s, the limit"
            )
