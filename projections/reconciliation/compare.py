"""Compares two sets of read-model tables by content: per table and per organisation
checksums, and the rows that differ.

Both sets are streamed in key order and merged, so memory stays flat however large the
tables are (server-side cursors on PostgreSQL).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from projections.read_models.schema import LIVE, TABLES, Table, TableSet
from storage.database import Store

MAX_LISTED_DIFFERENCES = 200
_FETCH_ROWS = 5_000


@dataclass
class TableComparison:
    table: str
    rows_live: int = 0
    rows_rebuilt: int = 0
    checksum_live: str = ""
    checksum_rebuilt: str = ""
    differing_rows: int = 0

    @property
    def equal(self) -> bool:
        return self.differing_rows == 0 and self.checksum_live == self.checksum_rebuilt


@dataclass
class Comparison:
    tables: list[TableComparison] = field(default_factory=list)
    # (table, organisation) -> (live checksum, rebuilt checksum), only where they differ.
    organizations: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def differing_rows(self) -> int:
        return sum(t.differing_rows for t in self.tables)

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "differing_rows": self.differing_rows,
            "tables": [
                {
                    "table": t.table,
                    "rows_live": t.rows_live,
                    "rows_rebuilt": t.rows_rebuilt,
                    "checksum_live": t.checksum_live,
                    "checksum_rebuilt": t.checksum_rebuilt,
                    "differing_rows": t.differing_rows,
                    "equal": t.equal,
                }
                for t in self.tables
            ],
            "organizations": [
                {
                    "table": table,
                    "organization_code": org,
                    "checksum_live": a,
                    "checksum_rebuilt": b,
                }
                for (table, org), (a, b) in sorted(self.organizations.items())
            ],
            "differences": self.differences,
        }


def _rows(
    store: Store, conn: Any, tables: TableSet, table: Table, names: tuple[str, ...] | None = None
) -> Iterator[tuple]:
    """A table's rows in key order (only the columns `names`, if given)."""
    names = names or table.column_names
    if store.is_sqlite:
        order = ", ".join(table.key)
        cur = conn.cursor()
    else:
        types = dict(table.columns)
        order = ", ".join(f'{c} COLLATE "C"' if types[c] == "text" else c for c in table.key)
        cur = conn.cursor(name=f"compare_{tables.prefix}{table.name}")
    cur.execute(f"SELECT {', '.join(names)} FROM {tables.table(table.name)} ORDER BY {order}")
    try:
        # Rows come as tuples, a blob as bytes (psycopg 3's bytea and SQLite's BLOB alike),
        # so they are compared and digested as they are.
        while batch := cur.fetchmany(_FETCH_ROWS):
            yield from batch
    finally:
        cur.close()


def _digest(row: tuple) -> bytes:
    return hashlib.blake2b(repr(row).encode(), digest_size=16).digest()


def compare(store: Store, conn: Any, live: TableSet, rebuilt: TableSet) -> Comparison:
    """Compares inside the caller's transaction (which keeps both sets still)."""
    result = Comparison()
    for table in TABLES:
        compare_rows(
            result,
            table,
            table.column_names,
            _rows(store, conn, live, table),
            _rows(store, conn, rebuilt, table),
        )
    return result


def live_rows(store: Store, conn: Any, table: Table, names: tuple[str, ...]) -> Iterator[tuple]:
    """The live set's rows of `table`, columns `names`, in key order: one side of
    compare_rows for a rebuild made elsewhere (the Spark job, projections/spark/job.py)."""
    return _rows(store, conn, LIVE, table, names)


def compare_rows(
    result: Comparison,
    table: Table,
    names: tuple[str, ...],
    live_iter: Iterator[tuple],
    rebuilt_iter: Iterator[tuple],
) -> TableComparison:
    """Merges two streams of `table`'s rows (columns `names`, both in key order) into
    `result`: per table and per organisation checksums, and the rows that differ."""
    key_at = [names.index(c) for c in table.key]
    org_at = names.index(table.org_column) if table.org_column in names else None
    summary = TableComparison(table.name)
    sums = {"live": hashlib.sha256(), "rebuilt": hashlib.sha256()}
    per_org: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"live": hashlib.sha256(), "rebuilt": hashlib.sha256()}
    )

    def take(side: str, row: tuple) -> None:
        digest = _digest(row)
        sums[side].update(digest)
        org = row[org_at] if org_at is not None else ""
        per_org[org or ""][side].update(digest)

    def differ(live_row: tuple | None, rebuilt_row: tuple | None) -> None:
        summary.differing_rows += 1
        if len(result.differences) < MAX_LISTED_DIFFERENCES:
            some = live_row if live_row is not None else rebuilt_row
            assert some is not None
            result.differences.append(
                {
                    "table": table.name,
                    "key": {names[i]: some[i] for i in key_at},
                    "live": None if live_row is None else _readable(names, live_row),
                    "rebuilt": None if rebuilt_row is None else _readable(names, rebuilt_row),
                }
            )

    live_sum, rebuilt_sum = sums["live"], sums["rebuilt"]
    a, b = next(live_iter, None), next(rebuilt_iter, None)
    while a is not None or b is not None:
        if a == b:
            # The same row on both sides (so the same key): nearly every row of a check. Its
            # digest is taken once for both; the checksums are what take() would give.
            digest = _digest(a)  # type: ignore[arg-type]
            live_sum.update(digest)
            rebuilt_sum.update(digest)
            org_sums = per_org[(a[org_at] if org_at is not None else "") or ""]  # type: ignore[index]
            org_sums["live"].update(digest)
            org_sums["rebuilt"].update(digest)
            summary.rows_live += 1
            summary.rows_rebuilt += 1
            a, b = next(live_iter, None), next(rebuilt_iter, None)
            continue
        ka = tuple(a[i] for i in key_at) if a is not None else None
        kb = tuple(b[i] for i in key_at) if b is not None else None
        if b is None or (a is not None and ka < kb):  # type: ignore[operator]
            take("live", a)  # type: ignore[arg-type]
            summary.rows_live += 1
            differ(a, None)
            a = next(live_iter, None)
        elif a is None or kb < ka:  # type: ignore[operator]
            take("rebuilt", b)
            summary.rows_rebuilt += 1
            differ(None, b)
            b = next(rebuilt_iter, None)
        else:
            take("live", a)
            take("rebuilt", b)
            summary.rows_live += 1
            summary.rows_rebuilt += 1
            if a != b:
                differ(a, b)
            a, b = next(live_iter, None), next(rebuilt_iter, None)
    summary.checksum_live = sums["live"].hexdigest()
    summary.checksum_rebuilt = sums["rebuilt"].hexdigest()
    for org, pair in per_org.items():
        x, y = pair["live"].hexdigest(), pair["rebuilt"].hexdigest()
        if x != y:
            result.organizations[(table.name, org)] = (x, y)
    result.tables.append(summary)
    return summary


def _readable(names: tuple[str, ...], row: tuple) -> dict[str, Any]:
    """A row for a report: ciphertexts shown as their length, never decrypted."""
    return {
        n: (f"<{len(v)} encrypted bytes>" if isinstance(v, bytes) else v)
        for n, v in zip(names, row, strict=True)
    }
