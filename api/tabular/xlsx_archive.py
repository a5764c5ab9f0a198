"""The zip archive an XLSX is, checked before openpyxl reads any of it.

From the archive's directory alone (nothing is decompressed): how many members, how large
each declares itself once expanded, the total, and how many times deflate shrank each. Then
every member openpyxl opens is read once through the XML budget first (xml_budget.py); that
read stops at the size the member declares (zipfile stops there, and then finds the checksum
wrong for a member that would expand further), so a member lying about its size is refused
without being expanded.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO, Any

from api.tabular.limits import Deadline, TableLimits, mebibytes
from api.tabular.xml_budget import KeptBudget, scan_part
from domain.errors import ContentTooLarge, InvalidValue

READ_BYTES = 1024 * 1024
# A directory entry is 46 bytes and a name; Excel's names are under 40 characters.
DIRECTORY_BYTES_PER_MEMBER = 1024


def _refuse_directory(stream: IO[bytes], limits: TableLimits) -> None:
    """zipfile builds an object for every entry of the directory before anyone can count
    them: the end record, which zipfile itself reads (the private helper is the only way to
    read exactly the record it will), says how large the directory is."""
    stream.seek(0)
    end = zipfile._EndRecData(stream)
    if end is None:
        raise InvalidValue("file", "not a readable XLSX workbook (no zip directory)")
    members, directory_bytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if members > limits.max_members:
        raise ContentTooLarge(
            "file", f"the workbook has {members:,} parts; the limit is {limits.max_members}"
        )
    if directory_bytes > limits.max_members * DIRECTORY_BYTES_PER_MEMBER:
        raise ContentTooLarge(
            "file",
            f"the workbook's directory has {directory_bytes:,} "
            "bytes; the limit is "
            f"{limits.max_members * DIRECTORY_BYTES_PER_MEMBER:,}",
        )
    stream.seek(0)


def _check_members(archive: zipfile.ZipFile, limits: TableLimits) -> None:
    members = archive.infolist()
    if len(members) > limits.max_members:
        raise ContentTooLarge(
            "file", f"the workbook has {len(members):,} parts; the limit is {limits.max_members}"
        )
    total = 0
    for member in members:
        name, size = member.filename, member.file_size
        if member.flag_bits & 0x1:
            raise InvalidValue("file", f"the workbook's {name} is encrypted")
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InvalidValue(
                "file",
                f"the workbook's {name} is compressed with method "
                f"{member.compress_type}; XLSX uses deflate",
            )
        if size > limits.max_member_bytes:
            raise ContentTooLarge(
                "file",
                f"the workbook's {name} expands to "
                f"{mebibytes(size)}; the limit is "
                f"{mebibytes(limits.max_member_bytes)}",
            )
        ratio = size / max(member.compress_size, 1)
        if size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise ContentTooLarge(
                "file",
                f"the workbook's {name} expands {ratio:,.1f} times "
                f"(to {mebibytes(size)}); the limit is "
                f"{limits.max_ratio} times",
            )
        total += size
        if total > limits.max_total_bytes:
            raise ContentTooLarge(
                "file",
                f"the workbook expands to more than {mebibytes(limits.max_total_bytes)}, the limit",
            )


class _DeadlineReader:
    """A member's stream that checks the deadline at every read: openpyxl parses the large
    parts (shared strings, sheets) as a stream, so its parsing stops at the deadline too."""

    def __init__(self, raw: IO[bytes], deadline: Deadline) -> None:
        self.raw, self.deadline = raw, deadline

    def read(self, size: int = -1) -> bytes:
        self.deadline.check()
        return self.raw.read(size)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _DeadlineReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class CheckedArchive(zipfile.ZipFile):
    """A ZipFile whose members pass the XML budget before anyone else reads them."""

    def __init__(self, stream: IO[bytes], limits: TableLimits, deadline: Deadline) -> None:
        _refuse_directory(stream, limits)
        try:
            super().__init__(stream)
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            raise InvalidValue("file", "not a readable XLSX workbook") from None
        _check_members(self, limits)
        self.limits, self.deadline = limits, deadline
        self.kept = KeptBudget(limits)
        self.scanned: set[str] = set()

    def open(
        self, name: Any, mode: str = "r", pwd: bytes | None = None, *, force_zip64: bool = False
    ) -> Any:
        if mode != "r":
            return super().open(name, mode, pwd, force_zip64=force_zip64)
        member = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        if member.filename not in self.scanned:
            scan_part(member.filename, self._expanded(member), self.limits, self.kept)
            self.scanned.add(member.filename)  # only once it passed: a refusal stays one
        return _DeadlineReader(super().open(member, "r", pwd), self.deadline)

    def _expanded(self, member: zipfile.ZipInfo) -> Iterator[bytes]:
        expanded = 0
        try:
            with super().open(member, "r") as raw:
                while chunk := raw.read(READ_BYTES):
                    expanded += len(chunk)
                    if expanded > member.file_size:  # zipfile itself stops at file_size
                        raise ContentTooLarge(
                            "file",
                            f"the workbook's {member.filename} expands past the size it declares",
                        )
                    self.deadline.check()
                    yield chunk
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise InvalidValue(
                "file", f"the workbook's {member.filename} is damaged ({exc})"
            ) from None
