"""A roll's counts kept by the projector, so that a summary or a page's total costs the number
of unions in the scope, not the number of members.

The roll query (rolls.py) counts a span (member, union, status) as of day D known at moment K
when it was opened by K, started on or before D, and had not ended by D as known at K, joined
to the member's details as known at K (for the migrant and new-employment flags). As a sum
of point changes, each counted when its day <= D and its recorded time <= K:

- a span opened at time o from day f: +1 at (f, o), with the flags of the details current
  at o (every earlier version was recorded by then);
- the span closed at time c with end day e: -1 at (max(f, e), c), with the flags current at
  c (a span is closed after it is opened, and ends on or after the day it starts unless it
  never counted: max(f, e) says the same in both cases);
- new details at time r whose flags differ by d from the version before: for each span of
  the member, +d at (f, r), and for each span already closed, -d at (max(f, e), r) (a span
  still open takes the new flags into its -1 when it closes).

Every span opens after the member's first details (a join records both in one event), so
the join to the details never drops a span.

roll_counts holds these changes, one row per event, union and day; roll_totals their sums
per union. Counts as of D known at K are the totals less the rows after D and the rows on or
before D recorded after K: for a recent D and K both are few.
"""

from __future__ import annotations

from typing import Any

from projections.read_models.schema import TableSet
from storage.database import Store, pg_array

# The counts, in the column order of roll_counts and roll_totals.
COUNTS = ("members", "retained", "pending", "women", "migrant", "new_form")

# (position, organization code, day) -> the changes of that event to that union's counts.
Deltas = dict[tuple[int, str, int], list[int]]


def span_weights(span: dict[str, Any], details: dict[str, Any] | None) -> list[int]:
    """What one span adds to each count, with the member's flags as of the details given."""
    return [
        1,
        int(span["status"] == "retained"),
        int(span["status"] == "transfer_pending"),
        int(span["sex"] == "female"),
        int(details["migrant_worker"]) if details else 0,
        int(details["new_employment_form"]) if details else 0,
    ]


def end_day(span: dict[str, Any]) -> int:
    """The day from which a closed span no longer counts."""
    return max(span["valid_from"], span["valid_to"])


def add(deltas: Deltas, key: tuple[int, str, int], weights: list[int], sign: int) -> None:
    row = deltas.get(key)
    if row is None:
        row = deltas[key] = [0] * len(COUNTS)
    for n, weight in enumerate(weights):
        row[n] += sign * weight


def rows(deltas: Deltas, at_us: dict[int, int]) -> list[tuple]:
    """roll_counts rows in column order (changes that cancel out are not stored)."""
    return [
        (position, org, day, at_us[position], *counts)
        for (position, org, day), counts in deltas.items()
        if any(counts)
    ]


def write_totals(store: Store, cur: Any, table: str, deltas: Deltas) -> None:
    """Adds a batch's changes to roll_totals, one upsert per batch. Every union an event
    changed the counts of has its row, even where the changes cancel out: the same rows
    whatever the batches (a rebuild's are larger than a catch-up's)."""
    totals: dict[str, list[int]] = {}
    for (_, org, _), counts in deltas.items():
        row = totals.setdefault(org, [0] * len(COUNTS))
        for n, value in enumerate(counts):
            row[n] += value
    if not totals:
        return
    columns = ("organization_code", *COUNTS)
    adds = ", ".join(f"{c} = t.{c} + excluded.{c}" for c in COUNTS)
    if store.is_sqlite:
        marks = ", ".join("?" for _ in columns)
        cur.executemany(
            f"INSERT INTO {table} AS t ({', '.join(columns)}) VALUES ({marks})"
            f" ON CONFLICT (organization_code) DO UPDATE SET {adds}",
            [(org, *counts) for org, counts in totals.items()],
        )
        return
    params: list[Any] = []
    selects: list[str] = []
    values: list[list[Any]] = [list(totals)] + [
        [counts[n] for counts in totals.values()] for n in range(len(COUNTS))
    ]
    for kind, column in zip(("text", *["bigint"] * len(COUNTS)), values, strict=True):
        array, value = pg_array(column, kind)
        selects.append(array)
        params.append(value)
    cur.execute(
        store.sql(
            f"INSERT INTO {table} AS t ({', '.join(columns)})"
            f" SELECT * FROM unnest({', '.join(selects)})"
            f" ON CONFLICT (organization_code) DO UPDATE SET {adds}"
        ),
        params,
    )


def _summed(parts: list[str]) -> str:
    """One row of the counts summed over the UNION ALL of parts (each selecting COUNTS)."""
    sums = ", ".join(f"COALESCE(SUM({c}), 0)" for c in COUNTS)
    return f"SELECT {sums} FROM ({' UNION ALL '.join(parts)}) x"


_PLAIN = ", ".join(COUNTS)
_NEGATED = ", ".join(f"-{c}" for c in COUNTS)


def counts_sql(counts_table: str, totals_table: str, org_in: str) -> str:
    """The counts of the unions org_in selects (a WHERE fragment on a column named
    organization_code), as of :d known at :k: one row of sums, in COUNTS order."""
    return _summed(
        [
            f"SELECT {_PLAIN} FROM {totals_table} WHERE {org_in}",
            f"SELECT {_NEGATED} FROM {counts_table} WHERE {org_in} AND day > :d",
            f"SELECT {_NEGATED} FROM {counts_table} WHERE {org_in} AND day <= :d"
            " AND recorded_at_us > :k",
        ]
    )


def counts_by_root_sql(tables: TableSet) -> str:
    """The counts of the subtree of :root as it stands now, as of :d known now: its own and
    its subtree's totals (subtree_sums.py) less the rows after d of the unions below it
    (org_ancestors, read only for those rows: the index on day finds them).

    The rows' union is tested as an expression (code || ''), which no index serves: SQLite's
    planner otherwise looked up each union of the subtree by the code's index, 11 ms for a
    province of 4,862 unions with no row after d, against 0.01 by the index on day.
    PostgreSQL's plan is the same either way."""
    below = f"SELECT code FROM {tables.table('org_ancestors')} WHERE ancestor = :root"
    return _summed(
        [
            f"SELECT {_PLAIN} FROM {tables.table('roll_totals')} WHERE organization_code = :root",
            f"SELECT {_PLAIN} FROM {tables.table('subtree_roll_totals')}"
            " WHERE organization_code = :root",
            f"SELECT {_NEGATED} FROM {tables.table('roll_counts')} WHERE day > :d"
            f" AND (organization_code || '' = :root OR organization_code || '' IN ({below}))",
        ]
    )
