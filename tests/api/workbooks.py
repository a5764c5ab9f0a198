"""XLSX files written part by part, so that a part can hold anything (bombs included)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from io import BytesIO

MiB = 1024 * 1024
NS = "http://schemas.openxmlformats.org/"
HEADER = ("id_number", "name", "joined_on", "mobile", "migrant_worker", "new_employment_form")


def inline_row(number: int, values: Iterable[str]) -> str:
    cells = "".join(
        f'<c r="{chr(65 + i)}{number}" t="inlineStr"><is><t>{v}</t></is></c>'
        for i, v in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'


def sheet_xml(rows: str, dimension: str = "A1:F3") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}spreadsheetml/2006/'
        f'main"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>'
    ).encode()


def workbook(
    sheet: bytes | Iterable[bytes], shared_strings: Iterable[bytes] | None = None
) -> bytes:
    """A minimal XLSX; a part given as an iterable of chunks is streamed into the archive."""
    types = (
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        if shared_strings is not None
        else ""
    )
    strings_rel = (
        f'<Relationship Id="rId2" Type="{NS}officeDocument/2006/relationships/'
        f'sharedStrings" Target="sharedStrings.xml"/>'
        if shared_strings is not None
        else ""
    )
    parts: dict[str, bytes | Iterable[bytes]] = {
        "[Content_Types].xml": (
            f'<Types xmlns="{NS}package/2006/content-types"><Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/><Override '
            'PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/'
            'worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            f'officedocument.spreadsheetml.worksheet+xml"/>{types}</Types>'
        ).encode(),
        "_rels/.rels": (
            f'<Relationships xmlns="{NS}package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{NS}officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ).encode(),
        "xl/workbook.xml": (
            f'<workbook xmlns="{NS}spreadsheetml/2006/main" xmlns:r="{NS}officeDocument/2006/'
            'relationships"><sheets><sheet name="名册" sheetId="1" r:id="rId1"/></sheets>'
            "</workbook>"
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{NS}package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{NS}officeDocument/2006/relationships/worksheet" '
            f'Target="worksheets/sheet1.xml"/>{strings_rel}</Relationships>'
        ).encode(),
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            if isinstance(data, bytes):
                archive.writestr(name, data)
            else:
                with archive.open(name, "w") as member:
                    for chunk in data:
                        member.write(chunk)
    return out.getvalue()


def repeated(head: bytes, filler: bytes, total: int, tail: bytes) -> Iterator[bytes]:
    """head, filler repeated to total bytes, tail: in 1 MiB chunks."""
    yield head
    block = filler * (MiB // len(filler))
    for _ in range(total // len(block)):
        yield block
    yield tail
