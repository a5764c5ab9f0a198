"""分录汇总 and roll counts per subtree: ledger_sums and roll_totals added up over the unions
below each union, so that a statement or a roll's counts over a province's subtree read one
union's rows, not one row per union below it.

The tree is the one that stands now: each union under the parent of its latest move (the
latest valid_from, then the later event), kept as org_ancestors, one row per union and each
union above it. subtree_sums holds, per union with unions below it, the sums of their
ledger_sums rows (its own rows stay in ledger_sums): the subtree of U is ledger_sums of U plus
subtree_sums of U. subtree_roll_totals is the same for roll_totals.

subtree_sums also holds closing rows (months 0, period the day YYYYMMDD): the lines of the
year-end close (年终结账) and of its reversals, which 02表 leaves out of a year's flows. Those
are read from the lines for one union, and would be tens of thousands of lines over a
province.

A statement's subtree is the tree as it stood on the statement's day as known at its moment
(scope.py). The two agree when the moment is now and no move takes effect after that day:
statements and roll counts read these rows then (StatementQueries, RollQueries.counts), and
walk the tree otherwise.

Kept batch by batch with ledger_sums (Batch.flush): a batch's sums are added to every
ancestor of their union. A union founded adds its ancestor rows. A move rebuilds
org_ancestors from org_parents, and the unions whose set of unions below changed have their
rows summed again from ledger_sums (which already holds the batch), instead of being added
to. A bulk build fills the three tables once at its end (fill). Either way the rows are the
same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from projections.read_models import ledger_sums, roll_counts
from projections.read_models.schema import TableSet
from storage.database import Store, one_of

_SUMMED = (
    "s.months, s.period, s.account_code, s.earmarked, SUM(s.debit_fen), SUM(s.credit_fen),"
    " MIN(s.recorded_from_us), MAX(s.recorded_to_us)"
)
_GROUP = "a.ancestor, s.months, s.period, s.account_code, s.earmarked"
_COUNTED = ", ".join(f"SUM(t.{c})" for c in roll_counts.COUNTS)
# The months of a closing row (its period is a day).
CLOSING = 0


def closing_lines(tables: TableSet, alias: str) -> str:
    """The condition that a ledger line (alias) is the year-end close's or a reversal's of
    it. A line keeps its voucher's kind: only a reversal's lines need the voucher it
    reverses."""
    vouchers = tables.table("vouchers")
    return (
        f"({alias}.kind = 'year_end' OR {alias}.voucher_id IN ("
        f"SELECT v.voucher_id FROM {vouchers} v JOIN {vouchers} o ON o.voucher_id = v.reverses"
        " WHERE o.kind = 'year_end'))"
    )


def _closing_sql(tables: TableSet, where: str) -> str:
    """closing rows per ancestor, from the lines (where: on the ancestors `a`)."""
    return (
        f"SELECT a.ancestor, {CLOSING}, l.effective_on, l.account_code, l.earmarked,"
        " SUM(l.debit_fen), SUM(l.credit_fen), MIN(l.recorded_at_us), MAX(l.recorded_at_us)"
        f" FROM {tables.table('ledger_lines')} l JOIN {tables.table('org_ancestors')} a"
        f" ON a.code = l.organization_code WHERE {where} AND {closing_lines(tables, 'l')}"
        " GROUP BY a.ancestor, l.effective_on, l.account_code, l.earmarked"
    )


def _tree_now(tables: TableSet) -> str:
    """A WITH clause naming `up`: (code, ancestor) of the tree as it stands now, from
    org_parents. It starts the statement (WITH … INSERT works in both databases)."""
    parents = tables.table("org_parents")
    return (
        "WITH RECURSIVE latest(code, parent_code) AS ("
        " SELECT code, parent_code FROM ("
        "  SELECT code, parent_code, ROW_NUMBER() OVER ("
        "   PARTITION BY code ORDER BY valid_from DESC, position DESC) AS n"
        f"  FROM {parents}) p WHERE n = 1),"
        " up(code, ancestor) AS ("
        "  SELECT code, parent_code FROM latest WHERE parent_code IS NOT NULL"
        "  UNION"  # not ALL: a cycle (which the write side refuses) would still end
        "  SELECT u.code, l.parent_code FROM up u JOIN latest l ON l.code = u.ancestor"
        "  WHERE l.parent_code IS NOT NULL)"
    )


def _insert_tree_now(cur: Any, tables: TableSet) -> None:
    """Fills an empty org_ancestors with the tree as it stands now."""
    cur.execute(
        f"{_tree_now(tables)} INSERT INTO {tables.table('org_ancestors')} (code, ancestor)"
        " SELECT code, ancestor FROM up"
    )


# The tables fill() writes (their indexes come after it in a bulk build).
FILLS = ("org_ancestors", "subtree_sums", "subtree_roll_totals")


def fill(store: Store, cur: Any, tables: TableSet) -> None:
    """The three tables of a bulk build, from its org_parents, its filled ledger_sums and
    roll_totals, and its lines (the closing rows)."""
    ancestors = tables.table("org_ancestors")
    _insert_tree_now(cur, tables)
    cur.execute(
        f"INSERT INTO {tables.table('subtree_sums')} SELECT a.ancestor, {_SUMMED}"
        f" FROM {tables.table('ledger_sums')} s JOIN {ancestors} a"
        f" ON a.code = s.organization_code GROUP BY {_GROUP}"
    )
    cur.execute(f"INSERT INTO {tables.table('subtree_sums')} {_closing_sql(tables, '1 = 1')}")
    cur.execute(
        f"INSERT INTO {tables.table('subtree_roll_totals')} SELECT a.ancestor, {_COUNTED}"
        f" FROM {tables.table('roll_totals')} t JOIN {ancestors} a"
        " ON a.code = t.organization_code GROUP BY a.ancestor"
    )


def _in(store: Store, column: str, values: list[str], params: list[Any]) -> str:
    """A `column IN (...)` condition on the given values, its parameters added to params."""
    where, values_params = one_of(column, values, "text", sqlite=store.is_sqlite)
    params.extend(values_params)
    return where


def _ancestors_of(store: Store, cur: Any, tables: TableSet, codes: Iterable[str]) -> dict:
    """code -> its ancestors (nearest first is not promised), for the codes given."""
    found: dict[str, list[str]] = {}
    codes = list(codes)
    # SQLite's limit on parameters: a few hundred codes per query.
    step = 500 if store.is_sqlite else max(1, len(codes))
    for start in range(0, len(codes), step):
        params: list[Any] = []
        where = _in(store, "code", codes[start : start + step], params)
        cur.execute(
            store.sql(f"SELECT code, ancestor FROM {tables.table('org_ancestors')} WHERE {where}"),
            params,
        )
        for code, ancestor in cur.fetchall():
            found.setdefault(code, []).append(ancestor)
    return found


def _add_founded(
    store: Store, cur: Any, tables: TableSet, founded: list[tuple[str, str | None]]
) -> None:
    """org_ancestors rows of the unions a batch founded, in the order founded (a union's
    parent may be founded earlier in the same batch)."""
    chains = _ancestors_of(store, cur, tables, {p for _, p in founded if p is not None})
    rows: list[tuple[str, str]] = []
    for code, parent in founded:
        chain = [] if parent is None else [parent, *chains.get(parent, [])]
        chains[code] = chain
        rows.extend((code, ancestor) for ancestor in chain)
    store.executemany(
        cur, f"INSERT INTO {tables.table('org_ancestors')} (code, ancestor) VALUES (?, ?)", rows
    )


def _rebuild_ancestors(store: Store, cur: Any, tables: TableSet) -> set[str]:
    """org_ancestors again from org_parents (after a move); returns the unions whose set of
    unions below changed."""
    ancestors = tables.table("org_ancestors")
    now = _tree_now(tables)
    cur.execute(
        f"{now}, was AS (SELECT code, ancestor FROM {ancestors})"
        " SELECT ancestor FROM (SELECT * FROM up EXCEPT SELECT * FROM was) x"
        " UNION SELECT ancestor FROM (SELECT * FROM was EXCEPT SELECT * FROM up) y"
    )
    changed = {row[0] for row in cur.fetchall()}
    cur.execute(f"DELETE FROM {ancestors}")
    _insert_tree_now(cur, tables)
    return changed


def _sum_again(store: Store, cur: Any, tables: TableSet, codes: set[str]) -> None:
    """The subtree_sums and subtree_roll_totals rows of these unions, summed again from
    ledger_sums and roll_totals, and the closing rows from the lines (a scan of the lines:
    moves are rare)."""
    listed = sorted(codes)
    ancestors = tables.table("org_ancestors")
    for table, summed, source, group in (
        ("subtree_sums", _SUMMED, "ledger_sums s", _GROUP),
        ("subtree_roll_totals", _COUNTED, "roll_totals t", "a.ancestor"),
    ):
        alias = source[-1]
        params: list[Any] = []
        where = _in(store, "organization_code", listed, params)
        cur.execute(store.sql(f"DELETE FROM {tables.table(table)} WHERE {where}"), params)
        params = []
        where = _in(store, "a.ancestor", listed, params)
        cur.execute(
            store.sql(
                f"INSERT INTO {tables.table(table)} SELECT a.ancestor, {summed}"
                f" FROM {tables.prefix}{source} JOIN {ancestors} a"
                f" ON a.code = {alias}.organization_code WHERE {where} GROUP BY {group}"
            ),
            params,
        )
    params = []
    where = _in(store, "a.ancestor", listed, params)
    cur.execute(
        store.sql(f"INSERT INTO {tables.table('subtree_sums')} {_closing_sql(tables, where)}"),
        params,
    )


def _above(ancestors: dict[str, list[str]], skip: set[str]) -> dict[str, list[str]]:
    """Per union, its ancestors but those in skip (the unions summed again instead)."""
    if not skip:
        return ancestors
    return {code: [a for a in above if a not in skip] for code, above in ancestors.items()}


def _by_ancestor(above: dict[str, list[str]], sums: ledger_sums.Sums) -> ledger_sums.Sums:
    """A batch's sums added up per ancestor of their unions."""
    added: ledger_sums.Sums = {}
    for key, (debit, credit, first, last) in sums.items():
        rest = key[1:]
        for ancestor in above.get(key[0], ()):
            ledger_sums.merge(added, (ancestor, *rest), debit, credit, first, last)
    return added


def _counts_by_ancestor(
    above: dict[str, list[str]], deltas: roll_counts.Deltas
) -> roll_counts.Deltas:
    """A batch's changes to the roll counts added up per ancestor of their unions, as Deltas
    of one row per ancestor: summed per union first (a batch has many rows per union)."""
    per_union: roll_counts.Deltas = {}
    for (_, code, _), counts in deltas.items():
        roll_counts.add(per_union, (0, code, 0), counts, 1)
    added: roll_counts.Deltas = {}
    for (_, code, _), counts in per_union.items():
        for ancestor in above.get(code, ()):
            roll_counts.add(added, (0, ancestor, 0), counts, 1)
    return added


def write(
    store: Store,
    cur: Any,
    tables: TableSet,
    sums: ledger_sums.Sums,
    closing: ledger_sums.Sums,
    deltas: roll_counts.Deltas,
    founded: list[tuple[str, str | None]],
    moved: bool,
) -> None:
    """After a batch has written its rows, its ledger_sums and its roll_totals: its tree
    changes (founded: (code, parent) in order; moved: any move), and its sums, closing rows
    and roll count changes added to every ancestor of their unions."""
    resummed: set[str] = set()
    if moved:
        resummed = _rebuild_ancestors(store, cur, tables)
    elif founded:
        _add_founded(store, cur, tables, founded)
    if resummed:
        _sum_again(store, cur, tables, resummed)
    summed = {**sums, **closing}  # closing rows have keys of their own (months 0)
    codes = {key[0] for key in summed} | {code for _, code, _ in deltas}
    if not codes:
        return
    above = _above(_ancestors_of(store, cur, tables, codes), resummed)
    ledger_sums.write(store, cur, tables, _by_ancestor(above, summed), name="subtree_sums")
    roll_counts.write_totals(
        store, cur, tables.table("subtree_roll_totals"), _counts_by_ancestor(above, deltas)
    )
