"""What reading a workbook part with openpyxl would cost, counted before openpyxl reads it.

A size limit alone does not bound openpyxl's memory: it keeps much of what it parses (a
tree element of some 100 bytes for `<a/>`, a dict for the attributes of a row), so a few
megabytes of XML can cost hundreds. One pass of expat, the parser under openpyxl's
ElementTree, holds nothing but counters and refuses:
- a DTD (the only way to define entities, hence to expand them);
- nesting deeper than max_depth; a tag or comment that expat would have to hold more than
  max_token_bytes of; a text longer than max_text_chars;
- a row (`<row>`, which openpyxl builds whole, then drops) or a shared string (`<si>`) larger
  than max_row_cost units; more rows in a sheet than max_rows after the header;
- more than max_kept_cost units of what openpyxl keeps to the end of the read.
Costs: an element 1 and each attribute 1, plus 1 per 50 characters of names, values and text.
A row costs its row budget all that, and the kept budget its own attributes when openpyxl
keeps them; a shared string costs the kept budget 2 and its text; any other element costs the
kept budget twice its cost and 2 more. A kept unit is thus 60 to 90 bytes (measured with
openpyxl 3.1, the peak while reading: 100,000 rows with 10 attributes more than Excel writes,
1.7 million units, 59 MB more than the same rows without; 900,000 short shared strings, 1.8
million units, 131 MB; 120,000 fonts in styles.xml, 1.9 million units, 165 MB; 320,000
`<a b="..."/>`, 1.9 million units, 127 MB).
A part expat cannot parse is not refused here: openpyxl's parser stops at the same byte.
"""

from __future__ import annotations

import pyexpat
from collections.abc import Iterable

from api.tabular.limits import TableLimits
from domain.errors import ContentTooLarge

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
ROW, SHARED_STRING = MAIN + "row", MAIN + "si"
FEED_BYTES = 64 * 1024
CHARS_PER_UNIT = 50


class KeptBudget:
    """What openpyxl keeps, summed over the parts of one workbook."""

    def __init__(self, limits: TableLimits) -> None:
        self.limits = limits
        self.cost = 0

    def add(self, cost: int, part: str) -> None:
        self.cost += cost
        if self.cost > self.limits.max_kept_cost:
            raise ContentTooLarge(
                "file",
                f"the workbook's {part} holds more than openpyxl "
                "may keep in memory: over "
                f"{self.limits.max_kept_cost:,} units (of 60 to 90 "
                "bytes), the limit",
            )


class _PartScan:
    def __init__(self, part: str, limits: TableLimits, kept: KeptBudget) -> None:
        self.part, self.limits, self.kept = part, limits, kept
        self.max_depth, self.max_row_cost = limits.max_depth, limits.max_row_cost
        self.depth = 0
        # The open <row> or <si> ("" when none), its depth and its cost so far.
        self.unit = ""
        self.unit_depth = 0
        self.unit_cost = 0
        self.rows = 0
        self.text_chars = 0

    def refuse(self, what: str) -> None:
        raise ContentTooLarge("file", f"the workbook's {self.part} {what}")

    def start(self, name: str, attributes: list[str]) -> None:
        # Called for every element of a 100,000-row sheet (millions): kept lean.
        if self.text_chars:
            self.end_text()
        self.depth += 1
        if self.depth > self.max_depth:
            self.refuse(f"nests deeper than {self.max_depth} elements, the limit")
        # An attribute costs 1, and 1 more per 50 characters (of its name too: an overcount).
        cost = 1 + (len(attributes) >> 1) + sum(map(len, attributes)) // CHARS_PER_UNIT
        if self.unit:
            self.unit_cost += cost
            if self.unit_cost > self.max_row_cost:
                self.refuse_unit()
        elif name == ROW or name == SHARED_STRING:
            self.unit = "row" if name == ROW else "shared string"
            self.unit_depth, self.unit_cost = self.depth, cost
            if cost > self.max_row_cost:
                self.refuse_unit()
            if name == ROW:
                self.rows += 1
                if self.rows > self.limits.max_rows + 1:
                    self.refuse(
                        f"has more than {self.limits.max_rows} rows after the header, "
                        "the limit (blank rows count)"
                    )
                # openpyxl keeps the attributes of a row that has any but r, spans and
                # attributes of other namespaces (its "row dimensions").
                if any(a not in ("r", "spans") and "}" not in a for a in attributes[::2]):
                    self.kept.add(cost - 1, self.part)
            else:
                self.kept.add(2, self.part)
        else:
            self.kept.add(2 * cost + 2, self.part)

    def end(self, name: str) -> None:
        if self.text_chars:
            self.end_text()
        if self.depth == self.unit_depth:
            self.unit, self.unit_depth = "", 0
        self.depth -= 1

    def text(self, data: str) -> None:
        self.text_chars += len(data)
        if self.text_chars > self.limits.max_text_chars:
            self.refuse_text()

    def end_text(self) -> None:
        chars, self.text_chars = self.text_chars, 0
        units = chars // CHARS_PER_UNIT
        if self.unit == "row":
            self.unit_cost += units  # dropped with the row
            if self.unit_cost > self.limits.max_row_cost:
                self.refuse_unit()
        elif units:
            self.kept.add(units, self.part)  # a shared string, or text outside rows

    def refuse_text(self) -> None:
        self.refuse(f"has a text longer than {self.limits.max_text_chars} characters, the limit")

    def refuse_unit(self) -> None:
        self.refuse(
            f"has a {self.unit} larger than {self.limits.max_row_cost:,} units (an "
            f"element, an attribute or {CHARS_PER_UNIT} characters), the limit"
        )

    def refuse_doctype(self, *_: object) -> None:
        self.refuse("declares a DTD; workbook parts have none")


def scan_part(part: str, chunks: Iterable[bytes], limits: TableLimits, kept: KeptBudget) -> None:
    """Refuses the part if reading it would cost more than the limits allow."""
    scan = _PartScan(part, limits, kept)
    parser = pyexpat.ParserCreate(namespace_separator="}")
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.CharacterDataHandler = scan.text
    parser.StartDoctypeDeclHandler = scan.refuse_doctype
    fed = 0
    try:
        for chunk in chunks:
            for offset in range(0, len(chunk), FEED_BYTES):
                piece = chunk[offset : offset + FEED_BYTES]
                parser.Parse(piece, False)
                fed += len(piece)
                # Where expat stands is where its unfinished token starts: all after it is
                # buffered inside expat, which would grow without bound for an endless tag.
                if fed - parser.CurrentByteIndex > limits.max_token_bytes:
                    scan.refuse(
                        f"has a tag or comment longer than {limits.max_token_bytes} "
                        "bytes, the limit"
                    )
        parser.Parse(b"", True)
    except pyexpat.ExpatError:
        return
