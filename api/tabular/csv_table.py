"""A CSV table: UTF-8 (with or without a BOM), else GB18030, which is what Excel on a Chinese
Windows writes ("CSV" there means GBK, and GB18030 is its superset).

The csv module builds a whole record before anyone can look at it, so the lines it is fed are
bounded first: a record longer than max_record_chars, or with more delimiters than max_fields,
is refused before csv sees the line that makes it so. The upload is read a line at a time,
never whole.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Generator
from typing import IO

from api.tabular.limits import Deadline, TableLimits
from domain.errors import ContentTooLarge, InvalidValue

CHUNK_BYTES = 1024 * 1024


def _decodes(stream: IO[bytes], encoding: str, deadline: Deadline) -> bool:
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while chunk := stream.read(CHUNK_BYTES):
            decoder.decode(chunk)
            deadline.check()
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        stream.seek(0)
    return True


def detect_encoding(stream: IO[bytes], deadline: Deadline) -> str:
    """utf-8-sig (which also reads UTF-8 without a BOM), else gb18030; a file that is neither
    is refused before any row is read."""
    if _decodes(stream, "utf-8-sig", deadline):
        return "utf-8-sig"
    has_bom = stream.read(3) == codecs.BOM_UTF8
    stream.seek(0)
    if not has_bom and _decodes(stream, "gb18030", deadline):
        return "gb18030"
    raise InvalidValue("file", "a CSV file must be encoded in UTF-8 or GB18030 (GBK)")


class _BoundedLines:
    """The lines csv.reader reads, refused once the record they belong to grows too long."""

    def __init__(self, text: IO[str], limits: TableLimits) -> None:
        self.text = text
        self.limits = limits
        self.line_number = 0
        self.record_line = 1  # where the record being read starts
        self.record_chars = 0
        self.record_fields = 1

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        limit = self.limits.max_record_chars
        # readline's limit keeps an endless line from being read whole.
        line = self.text.readline(limit + 1)
        if not line:
            raise StopIteration
        self.line_number += 1
        if not self.record_chars:
            self.record_line = self.line_number
        self.record_chars += len(line)
        if self.record_chars > limit:
            raise ContentTooLarge(
                "file",
                f"the CSV record at line {self.record_line} is "
                f"longer than {limit} characters, the limit",
            )
        # Every field but the first follows a comma; quoted commas make this an overcount.
        self.record_fields += line.count(",")
        if self.record_fields > self.limits.max_fields:
            raise ContentTooLarge(
                "file",
                f"the CSV record at line {self.record_line} has "
                f"more than {self.limits.max_fields} fields, the "
                "limit",
            )
        return line

    def record_read(self) -> None:
        self.record_chars = 0
        self.record_fields = 1


def csv_records(
    stream: IO[bytes], limits: TableLimits, deadline: Deadline
) -> Generator[list[str], None, None]:
    """Every record of the file in order, blank ones as []."""
    encoding = detect_encoding(stream, deadline)
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    lines = _BoundedLines(text, limits)
    try:
        for record in csv.reader(lines):
            lines.record_read()
            yield record
    except csv.Error as exc:
        raise InvalidValue("file", f"not a readable CSV file ({exc})") from None
    finally:
        text.detach()  # the upload is the caller's to close
