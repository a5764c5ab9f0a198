"""How a roster file's rows are read (api/roster.py read_roster), row by row, for any cells: the
fast per-row code against the rules it implements, stated here once more on their own."""

from __future__ import annotations

import csv
import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.roster import COLUMNS, MAX_CELL_CHARS, REQUIRED, read_roster

TRUE = ("true", "1", "yes", "y", "是", "√")
FALSE = ("false", "0", "no", "n", "否", "")
SPACE = st.sampled_from(["", " ", "  ", "\t", "\u3000"])

cell = st.one_of(
    st.builds(lambda a, v, b: a + v + b, SPACE, st.sampled_from(TRUE + FALSE + ("maybe",)), SPACE),
    st.builds(lambda a, v, b: a + v + b, SPACE, st.text('张李3X-, "', max_size=8), SPACE),
    st.builds(
        lambda a, n: a + "长" * n, SPACE, st.integers(MAX_CELL_CHARS - 1, MAX_CELL_CHARS + 1)
    ),
    SPACE,
)
# Which columns the header names, in which order: the required ones, any of the others, and
# a column it does not know.
OPTIONAL = [c for c in (*COLUMNS, "remark") if c not in REQUIRED]
layouts = st.lists(st.sampled_from(OPTIONAL), unique=True).flatmap(
    lambda extra: st.permutations([*REQUIRED, *extra])
)


def expected(cells: list[str], header: list[str]) -> dict[str, Any] | tuple[str, str] | None:
    """The row as read, (field, reason) for a refused one, None for a blank one."""
    if all(c.strip() == "" for c in cells):
        return None
    value = {name: cells[i] if i < len(cells) else None for i, name in enumerate(header)}
    row: dict[str, Any] = {}
    for field in ("id_number", "name", "joined_on", "mobile"):
        text = (value.get(field) or "").strip()
        if len(text) > MAX_CELL_CHARS:
            return field, f"{field} is longer than {MAX_CELL_CHARS} characters"
        row[field] = text or None
    for field in REQUIRED:
        if row[field] is None:
            return field, f"{field} is empty"
    for field in ("migrant_worker", "new_employment_form"):
        text = (value.get(field) or "").strip().lower()
        if text not in TRUE + FALSE:
            return field, f"{field} is 是/否, true/false or 1/0"
        row[field] = text in TRUE
    return row


@settings(max_examples=300, deadline=None)
@given(
    header=layouts,
    rows=st.lists(st.lists(cell, min_size=0, max_size=len(COLUMNS) + 2), max_size=12),
)
def test_each_csv_row_is_read_as_the_rules_say(header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for cells in rows:
        writer.writerow(cells)
    good, bad = read_roster(io.BytesIO(out.getvalue().encode("utf-8")))

    want_good, want_bad = [], []
    for number, cells in enumerate(rows, start=2):
        # csv writes an empty row as a blank line, which reads back as no cells at all.
        read = expected(cells[: len(header)], header)
        if isinstance(read, dict):
            want_good.append((number, read))
        elif read is not None:
            want_bad.append((number, read))
    assert good == want_good
    assert [(n, (e.field, e.reason)) for n, e in bad] == want_bad
