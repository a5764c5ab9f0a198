"""Uploaded tables (a roster today; bank statements and tax files next), CSV or XLSX, read so
that no file can exhaust the server: every limit is in TableLimits, and a file past one is
refused (ContentTooLarge, 413; a malformed file InvalidValue, 422) before the caller has done
anything with it.

    with Table(stream) as table:
        header = table.header()                # row 1, as long as it is; None: empty file
        for number, cells in table.rows(width):  # rows 2.., each cut to width cells
            ...

Every row counts toward max_rows, blank or not, and the deadline is checked at every row.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import IO, Any

from api.tabular.csv_table import csv_records
from api.tabular.limits import Deadline, TableLimits
from api.tabular.xlsx_table import XlsxSheet
from domain.errors import InvalidValue

XLSX_MAGIC = b"PK\x03\x04"

__all__ = ["Table", "TableLimits"]


class Table:
    def __init__(self, stream: IO[bytes], limits: TableLimits | None = None) -> None:
        self.limits = limits or TableLimits()
        self.deadline = Deadline(self.limits.max_seconds)
        head = stream.read(4)
        stream.seek(0)
        self._sheet: XlsxSheet | None = None
        self._records: Generator[list[str], None, None] | None = None
        if head == XLSX_MAGIC:
            self._sheet = XlsxSheet(stream, self.limits, self.deadline)
        else:
            self._records = csv_records(stream, self.limits, self.deadline)

    def header(self) -> list[Any] | None:
        if self._sheet is not None:
            return self._sheet.header()
        assert self._records is not None
        return next(self._records, None)

    def rows(self, width: int) -> Iterator[tuple[int, list[Any]]]:
        """(row number as a spreadsheet shows it, the row's first width cells)."""
        if self._sheet is not None:
            source = self._sheet.rows(width)
        else:
            assert self._records is not None
            source = iter(self._records)
        limit = self.limits.max_rows
        for number, cells in enumerate(source, start=2):
            if number - 1 > limit:
                raise InvalidValue(
                    "file",
                    f"the file has more than {limit} rows after its "
                    "header, the limit (blank rows count)",
                )
            self.deadline.check()
            yield number, cells[:width]

    def close(self) -> None:
        if self._sheet is not None:
            self._sheet.close()
        if self._records is not None:
            self._records.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
