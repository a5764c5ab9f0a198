"""Which organisations a query covers: one union (self) or its subtree as of a date.

The subtree is walked in SQL over the tree's history (org_parents): a union belongs under the
parent named by its latest move effective on or before the date (ties: the later event),
counting only what was recorded by `known_at`. A founding row applies from day 0, as the
write side's Organization.parent_on does.
"""

from __future__ import annotations

from typing import Any

from domain.errors import InvalidValue
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
