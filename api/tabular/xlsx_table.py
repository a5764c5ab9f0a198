"""An XLSX table: the first worksheet, read by openpyxl in read-only mode from a checked
archive (xlsx_archive.py).

openpyxl pads every row to the dimension a sheet declares (`<dimension ref="A1:XFD1048576"/>`
made each row 16,384 cells): the declaration is dropped (reset_dimensions() forgets the sheet's
declared last row and column), the header row is read as long as it is, and every other row
only as wide as the caller asks, so no cell right of the header's last column is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from openpyxl.reader.excel import ExcelReader

from api.tabular.limits import Deadline, TableLimits
from api.tabular.xlsx_archive import CheckedArchive
from domain.errors import InvalidValue


class XlsxSheet:
    def __init__(self, stream: IO[bytes], limits: TableLimits, deadline: Deadline) -> None:
        archive = CheckedArchive(stream, limits, deadline)
        try:
            # load_workbook() opens an archive of its own; this is its body with ours instead.
            reader = ExcelReader(stream, read_only=True, data_only=True, keep_links=False)
            reader.archive, reader.valid_files = archive, archive.namelist()
            reader.read()
        except InvalidValue:
            archive.close()
            raise
        except Exception:  # openpyxl raises many types for a damaged workbook
            archive.close()
            raise InvalidValue("file", "not a readable XLSX workbook") from None
        self.workbook = reader.wb
        if not self.workbook.worksheets:
            self.close()
            raise InvalidValue("file", "the XLSX workbook has no worksheet")
        self.sheet = self.workbook.worksheets[0]
        self.sheet.reset_dimensions()

    def header(self) -> list[Any] | None:
        rows = self._read(self.sheet.iter_rows(min_row=1, max_row=1, values_only=True))
        return next(rows, None)

    def rows(self, width: int) -> Iterator[list[Any]]:
        """Rows 2 onwards, each exactly width cells, blank ones too."""
        return self._read(self.sheet.iter_rows(min_row=2, max_col=width, values_only=True))

    @staticmethod
    def _read(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[Any]]:
        try:
            for values in rows:
                yield list(values)
        except InvalidValue:
            raise
        except Exception:
            raise InvalidValue("file", "the XLSX workbook is damaged") from None

    def close(self) -> None:
        self.workbook.close()
