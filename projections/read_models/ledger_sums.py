"""分录汇总: the ledger lines summed per organisation, account, earmarked column and period of
effective dates (each calendar month and each calendar year), maintained by the projector in the
same batch as the lines, so that catch-up, rebuild and the comparison of a rebuild cover them.

Statements read these sums for the whole years and whole months inside their range, and the
lines themselves only for the days at its edges: a county's year is a few thousand rows instead
of a hundred thousand lines.

"As known at" a moment k stays exact: each row keeps the earliest and the latest recorded time
of the lines it sums (recorded_from_us, recorded_to_us). A row recorded entirely by k is taken
whole, a row recorded entirely after k is left out, and a row recorded partly by k is replaced
by finer ones: a year row by its month rows, a month row by its lines recorded by k. The figures
are thus always the line-level sums, to the fen, for any range, k and scope. Only the periods
recorded across k are read finer: a k after a period's last entry reads it as fast as "now", a k
inside the year being recorded costs about what summing its lines did. A year row is replaced
per organisation and year (all of that organisation's month rows for the year): one lookup per
organisation, not one per account.

A row is keyed (organization_code, months, period, account_code, earmarked): months is 1 for a
month row, whose period is YYYYMM, and 12 for a year row, whose period is YYYY01 (its first
month).
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from projections.read_models.rows import KNOWN_NOW_US, day_int
from projections.read_models.schema import LEDGER_SUMS_COLUMNS, TableSet
from storage.database import Store, pg_array

MONTH, YEAR = 1, 12
_COLUMNS = tuple(name for name, _ in LEDGER_SUMS_COLUMNS)
_KEY = "organization_code, months, period, account_code, earmarked"
_PG_TYPES = tuple(
    "text" if c in ("organization_code", "account_code") else "bigint" for c in _COLUMNS
)

# (organization_code, months, period, account_code, earmarked)
#   -> [debit, credit, recorded_from, recorded_to]
Sums = dict[tuple[str, int, int, str, int], list[int]]


def add(
    sums: Sums,
    organization_code: str,
    account_code: str,
    earmarked: int,
    day: int,
    debit_fen: int,
    credit_fen: int,
    at_us: int,
) -> None:
    """Adds one ledger line (effective on `day`, YYYYMMDD) to its month and its year."""
    month = day // 100
    for key in (
        (organization_code, MONTH, month, account_code, earmarked),
        (organization_code, YEAR, month // 100 * 100 + 1, account_code, earmarked),
    ):
        merge(sums, key, debit_fen, credit_fen, at_us, at_us)


def merge(
    sums: Sums,
    key: tuple[str, int, int, str, int],
    debit_fen: int,
    credit_fen: int,
    first_us: int,
    last_us: int,
) -> None:
    """Adds to the row of `key` amounts recorded from first_us to last_us (one line: both
    its recorded time)."""
    row = sums.get(key)
    if row is None:
        sums[key] = [debit_fen, credit_fen, first_us, last_us]
        return
    row[0] += debit_fen
    row[1] += credit_fen
    if first_us < row[2]:
        row[2] = first_us
    if last_us > row[3]:
        row[3] = last_us


def write(store: Store, cur: Any, tables: TableSet, sums: Sums, name: str = "ledger_sums") -> None:
    """Adds a batch's sums to the stored rows of ledger_sums (or of `name`, a table of the
    same columns: subtree_sums), in one upsert; the key index exists from the start of a
    build, as for every table the projector looks rows up in."""
    if not sums:
        return
    table = tables.table(name)
    if store.is_sqlite:
        cur.executemany(
            f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" ON CONFLICT ({_KEY}) DO UPDATE SET"
            " debit_fen = debit_fen + excluded.debit_fen,"
            " credit_fen = credit_fen + excluded.credit_fen,"
            " recorded_from_us = min(recorded_from_us, excluded.recorded_from_us),"
            " recorded_to_us = max(recorded_to_us, excluded.recorded_to_us)",
            [(*key, *row) for key, row in sums.items()],
        )
        return
    # One statement for the whole batch, each column one array parameter (store.pg_array).
    columns: list[list[Any]] = [[] for _ in _COLUMNS]
    for key, row in sums.items():
        for n, value in enumerate((*key, *row)):
            columns[n].append(value)
    params: list[Any] = []
    selects: list[str] = []
    for kind, values in zip(_PG_TYPES, columns, strict=True):
        array, value = pg_array(values, kind)
        selects.append(array)
        params.append(value)
    cur.execute(
        store.sql(
            f"INSERT INTO {table} AS s ({', '.join(_COLUMNS)})"
            f" SELECT * FROM unnest({', '.join(selects)})"
            f" ON CONFLICT ({_KEY}) DO UPDATE SET"
            " debit_fen = s.debit_fen + EXCLUDED.debit_fen,"
            " credit_fen = s.credit_fen + EXCLUDED.credit_fen,"
            " recorded_from_us = LEAST(s.recorded_from_us, EXCLUDED.recorded_from_us),"
            " recorded_to_us = GREATEST(s.recorded_to_us, EXCLUDED.recorded_to_us)"
        ),
        params,
    )


# The table fill() writes (its indexes come after it in a bulk build).
FILLS = ("ledger_sums",)


def fill(store: Store, cur: Any, tables: TableSet) -> None:
    """Sums every line of `tables` into its empty ledger_sums at once: what add() and write()
    would have stored batch by batch, for a bulk build (a third of their cost, measured on a
    county's 200,000-event build). Integer division gives the month (YYYYMM) and the year's
    first month (YYYY01) in both databases."""
    s, lines = tables.table("ledger_sums"), tables.table("ledger_lines")
    group = "organization_code, account_code, earmarked"
    for months, period in ((MONTH, "effective_on / 100"), (YEAR, "effective_on / 10000 * 100 + 1")):
        cur.execute(
            f"INSERT INTO {s} ({', '.join(_COLUMNS)})"
            f" SELECT organization_code, {months}, {period}, account_code, earmarked,"
            " SUM(debit_fen), SUM(credit_fen), MIN(recorded_at_us), MAX(recorded_at_us)"
            f" FROM {lines} GROUP BY {group}, {period}"
        )


# --- reading: a range of effective dates as whole years, whole months and edge days ---------


@dataclass
class Pieces:
    """A range of effective dates split into whole years (periods YYYY01), runs of whole
    months (YYYYMM) and runs of days (YYYYMMDD), all inclusive."""

    years: list[tuple[int, int]] = field(default_factory=list)
    months: list[tuple[int, int]] = field(default_factory=list)
    days: list[tuple[int, int]] = field(default_factory=list)


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _split_months(a: datetime.date, b: datetime.date, pieces: Pieces) -> None:
    # Months as indexes year * 12 + month - 1: the first starting on or after a, the last
    # ending on or before b.
    first = a.year * 12 + a.month - 1 + (0 if a.day == 1 else 1)
    last = b.year * 12 + b.month - 1 - (0 if b.day == _last_day(b.year, b.month) else 1)
    if first > last:
        pieces.days.append((day_int(a), day_int(b)))
        return
    fy, fm = divmod(first, 12)
    ly, lm = divmod(last, 12)
    pieces.months.append((fy * 100 + fm + 1, ly * 100 + lm + 1))
    if a.day != 1:  # then a's month is not whole, and a < the first whole month
        pieces.days.append(
            (day_int(a), a.year * 10_000 + a.month * 100 + _last_day(a.year, a.month))
        )
    if b.day != _last_day(b.year, b.month):
        pieces.days.append((b.year * 10_000 + b.month * 100 + 1, day_int(b)))


def split(date_from: datetime.date, date_to: datetime.date) -> Pieces:
    pieces = Pieces()
    if date_from > date_to:
        return pieces
    first = date_from.year + (0 if (date_from.month, date_from.day) == (1, 1) else 1)
    last = date_to.year - (0 if (date_to.month, date_to.day) == (12, 31) else 1)
    if first > last:
        _split_months(date_from, date_to, pieces)
        return pieces
    pieces.years.append((first * 100 + 1, last * 100 + 1))
    if date_from.year < first:
        _split_months(date_from, datetime.date(first - 1, 12, 31), pieces)
    if date_to.year > last:
        _split_months(datetime.date(last + 1, 1, 1), date_to, pieces)
    return pieces


def flow_sql(
    tables: TableSet,
    bucket: int,
    pieces: Pieces,
    org_in: Callable[[str], str],
    k_us: int,
    params: dict[str, Any],
    ctes: list[str],
    sums: str = "ledger_sums",
) -> list[str]:
    """SELECTs of (bucket, account_code, earmarked, debit_fen, credit_fen) rows whose sums
    are the sums of the ledger lines of the pieces recorded by :k (params must hold it), in
    the organisations org_in(alias) admits; the common table expressions they use are
    appended to ctes ("name AS (...)"). With k "now" every row is recorded by then and the
    finer rows are left out of the statement. sums: the table the years and months are read
    from; subtree_sums (whose rows have no lines of their own to be read finer) only with k
    "now"."""
    s, lines = tables.table(sums), tables.table("ledger_lines")
    partly = k_us < KNOWN_NOW_US
    if partly and sums != "ledger_sums":
        raise ValueError(f"{sums} is read only as known now")

    def out(a: str) -> str:
        return (
            f"SELECT {bucket} AS bucket, {a}.account_code, {a}.earmarked, {a}.debit_fen,"
            f" {a}.credit_fen"
        )

    def whole(a: str) -> str:
        return f" AND {a}.recorded_to_us <= :k"

    def split_at_k(a: str) -> str:
        return f" AND {a}.recorded_from_us <= :k AND {a}.recorded_to_us > :k"

    def same_group(a: str, b: str) -> str:
        return (
            f"{b}.organization_code = {a}.organization_code"
            f" AND {b}.account_code = {a}.account_code AND {b}.earmarked = {a}.earmarked"
        )

    lines_of_month = (
        f" JOIN {lines} l ON {same_group('m', 'l')}"
        " AND l.effective_on BETWEEN m.period * 100 + 1 AND m.period * 100 + 31"
        " AND l.recorded_at_us <= :k"
    )
    sql = []
    for n, (first, last) in enumerate(pieces.years):
        p1, p2 = f"y{bucket}_{n}a", f"y{bucket}_{n}b"
        params[p1], params[p2] = first, last
        years = f" WHERE {org_in('y')} AND y.months = 12 AND y.period BETWEEN :{p1} AND :{p2}"
        if not partly:
            sql.append(f"{out('y')} FROM {s} y{years}{whole('y')}")
            continue
        # An organisation's year with any line recorded after k ("late") is read from its
        # month rows, and from the lines of a month that k falls within; its other years
        # are whole (one lookup per organisation and year, not per account).
        late = f"late{bucket}_{n}"
        ctes.append(
            f"{late}(organization_code, period) AS ("
            f"SELECT DISTINCT z.organization_code, z.period FROM {s} z"
            f" WHERE {org_in('z')} AND z.months = 12 AND z.period BETWEEN :{p1} AND :{p2}"
            " AND z.recorded_to_us > :k)"
        )
        sql.append(
            f"{out('y')} FROM {s} y{years}{whole('y')}"
            f" AND (y.organization_code, y.period) NOT IN"
            f" (SELECT organization_code, period FROM {late})"
        )
        months_of_late = (
            f" FROM {late} ly JOIN {s} m"
            " ON m.organization_code = ly.organization_code AND m.months = 1"
            " AND m.period BETWEEN ly.period AND ly.period + 11"
        )
        sql.append(f"{out('m')}{months_of_late} WHERE m.recorded_to_us <= :k")
        sql.append(f"{out('l')}{months_of_late}{lines_of_month} WHERE{split_at_k('m')[4:]}")
    for n, (first, last) in enumerate(pieces.months):
        p1, p2 = f"m{bucket}_{n}a", f"m{bucket}_{n}b"
        params[p1], params[p2] = first, last
        months = f" WHERE {org_in('m')} AND m.months = 1 AND m.period BETWEEN :{p1} AND :{p2}"
        sql.append(f"{out('m')} FROM {s} m{months}{whole('m')}")
        if partly:
            sql.append(f"{out('l')} FROM {s} m{lines_of_month}{months}{split_at_k('m')}")
    for n, (first, last) in enumerate(pieces.days):
        p1, p2 = f"d{bucket}_{n}a", f"d{bucket}_{n}b"
        params[p1], params[p2] = first, last
        sql.append(
            f"{out('l')} FROM {lines} l WHERE {org_in('l')}"
            f" AND l.effective_on BETWEEN :{p1} AND :{p2} AND l.recorded_at_us <= :k"
        )
    return sql
