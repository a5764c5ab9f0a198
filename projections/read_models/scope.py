"""Which organisations a query covers: one union (self) or its subtree as of a date.

The subtree is walked in SQL over the tree's history (org_parents): a union belongs under the
parent named by its latest move effective on or before the date (ties: the later event),
counting only what was recorded by `known_at`. A founding row applies from day 0, as the
write side's Organization.parent_on does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from domain.errors import InvalidValue
from projections.read_models.kept import Kept
from projections.read_models.rows import KNOWN_NOW_US
from projections.read_models.schema import TableSet

SCOPES = ("self", "subtree")


def org_filter(
    tables: TableSet, column: str, scope: str, code: str, params: dict[str, Any]
) -> tuple[str, str]:
    """(WITH clause, WHERE fragment). params must hold :tree_day and :k."""
    if scope not in SCOPES:
        raise InvalidValue("scope", "scope is self or subtree")
    params["root"] = code
    if scope == "self":
        return "", f"{column} = :root"
    parents = tables.table("org_parents")
    with_clause = f"""WITH RECURSIVE subtree(code) AS (
        SELECT :root
        UNION
        SELECT p.code FROM {parents} p JOIN subtree s ON p.parent_code = s.code
        WHERE p.valid_from <= :tree_day AND p.recorded_at_us <= :k
          AND NOT EXISTS (
            SELECT 1 FROM {parents} q
            WHERE q.code = p.code AND q.valid_from <= :tree_day AND q.recorded_at_us <= :k
              AND (q.valid_from > p.valid_from
                   OR (q.valid_from = p.valid_from AND q.position > p.position))))
    """
    return with_clause, f"{column} IN (SELECT code FROM subtree)"


def subtree_codes(
    store: Any, cur: Any, tables: TableSet, code: str, tree_day: int, k_us: int
) -> list[str]:
    params: dict[str, Any] = {"tree_day": tree_day, "k": k_us}
    with_clause, _ = org_filter(tables, "code", "subtree", code, params)
    cur.execute(store.sql(f"{with_clause} SELECT code FROM subtree ORDER BY code"), params)
    return [r[0] for r in cur.fetchall()]


# Up to this many codes a subtree is listed as itself without reading every other union.
_FEW_CODES = 64


def subtree_listed(
    store: Any,
    cur: Any,
    tables: TableSet,
    code: str,
    tree_day: int,
    k_us: int,
    settled: Callable[[], bool],
) -> dict[str, list[str]]:
    """A subtree as one array parameter for listed_in: {"codes": its codes}, or {"outside":
    the codes of every other union} when those are fewer. PostgreSQL's planner estimates
    `= ANY(array)` element by element against the column's statistics: for the 3,102 codes
    of a province at scale 0.03 it planned a roll page for 18 ms and ran it in 0.5 ms. The
    whole deployment's subtree lists no code at all.

    Known now, on a day after which no move takes effect (settled: tree_settled, as the
    caller asks it), the subtree is read from org_ancestors (the tree as it stands now,
    which is then the tree of that day) by its index: the walk over org_parents took 35 ms
    for a province of 4,862 unions."""
    if reads_by_root("subtree", k_us, settled):
        cur.execute(
            store.sql(f"SELECT code FROM {tables.table('org_ancestors')} WHERE ancestor = :root"),
            {"root": code},
        )
        codes = [code, *(c for (c,) in cur.fetchall())]
    else:
        codes = subtree_codes(store, cur, tables, code, tree_day, k_us)
    if len(codes) <= _FEW_CODES:
        return {"codes": sorted(codes)}
    inside = set(codes)
    cur.execute(f"SELECT code FROM {tables.table('organizations')}")
    others = [c for (c,) in cur.fetchall() if c not in inside]
    return {"outside": others} if len(others) < len(codes) else {"codes": sorted(codes)}


# What SubtreeListings keeps in one process: at most this many listings, and codes in all
# (a code is about 70 bytes as a string).
LISTINGS_MAX = 16
LISTINGS_MAX_CODES = 200_000


class SubtreeListings:
    """The subtrees of one table set lately listed (subtree_listed), each kept with the
    version of the tree it was listed from, so that the pages of a big subtree's roll do not
    list it again: every union's code read twice was most of a province's roll page on SQLite
    (about 8 of 11.7 ms, 4,862 unions), and 4-5 ms of one on PostgreSQL.

    The version is the last position in org_parents, read in the reader's snapshot by its
    index. Every founding and every move of a union adds a row there, at its event's
    position, and rows are never changed or removed; so tables that agree on the last
    position hold the same tree (a rebuild of the same events too), and what a listing reads
    (org_parents, org_ancestors, every union's code) is the same. A listing answered is
    shared: it is read, never changed."""

    def __init__(self, store: Any, tables: TableSet) -> None:
        self.store = store
        self.tables = tables
        self._kept: Kept[tuple[int, dict[str, list[str]]]] = Kept(LISTINGS_MAX, LISTINGS_MAX_CODES)

    def listed(
        self, cur: Any, code: str, tree_day: int, k_us: int, settled: Callable[[], bool]
    ) -> dict[str, list[str]]:
        """subtree_listed's answer, taken as kept when the tree has not changed since."""
        cur.execute(f"SELECT COALESCE(MAX(position), -1) FROM {self.tables.table('org_parents')}")
        version = cur.fetchone()[0]
        # Known now on a settled day, the listing is the tree as it stands (any such day).
        key = (code,) if reads_by_root("subtree", k_us, settled) else (code, tree_day, k_us)
        found = self._kept.get(key)
        if found is not None and found[0] == version:
            return found[1]
        listed = subtree_listed(self.store, cur, self.tables, code, tree_day, k_us, settled)
        ((_, codes),) = listed.items()
        self._kept.put(key, (version, listed), len(codes))
        return listed


def listed_in(store: Any, column: str, listed: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    """The condition that `column` names a union of a subtree_listed subtree, and the one
    parameter it names, in the store's form: a PostgreSQL array, or a JSON array that SQLite
    reads with json_each.

    SQLite's planner does not weigh how much of a table a list of codes holds: it looked up a
    province's every union by the column's index and sorted all their rows after a page's
    anchor (17-22 ms a page, a province of 4,862 unions). A subtree listed by the unions
    outside it (the bigger half of the tree) is marked with a unary + so that it does not:
    a page then walks the roll order index (roll_spans' second) from its anchor and stops
    after it (0.15 ms)."""
    ((name, codes),) = listed.items()
    if not store.is_sqlite:
        test = "= ANY" if name == "codes" else "<> ALL"
        return f"{column} {test}(:{name})", {name: codes}
    if name == "codes":
        return f"{column} IN (SELECT value FROM json_each(:codes))", {name: json.dumps(codes)}
    return f"+{column} NOT IN (SELECT value FROM json_each(:outside))", {name: json.dumps(codes)}


def tree_settled(store: Any, cur: Any, tables: TableSet, tree_day: int) -> bool:
    """Whether no move takes effect after tree_day: then the tree as it stood that day, known
    now, is the tree as it stands now (foundings count from day 0), which org_ancestors and
    the subtree sums follow (subtree_sums.py)."""
    cur.execute(
        store.sql(f"SELECT 1 FROM {tables.table('org_parents')} WHERE valid_from > ? LIMIT 1"),
        (tree_day,),
    )
    return cur.fetchone() is None


def reads_by_root(scope: str, k_us: int, settled: Callable[[], bool]) -> bool:
    """Whether a read may take a subtree's sums and counts from its root's rows and the
    subtree tables (subtree_sums.py): a subtree, known now, on a day the tree is settled
    (settled: asked last, since it costs a query)."""
    return scope == "subtree" and k_us >= KNOWN_NOW_US and settled()
