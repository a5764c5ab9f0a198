"""工会组织 as the read models know them: child unions, and the lookup by name or code, on
the tree as it stands on a day (moves dated later do not count yet).

One query per page whatever its size: a union's current parent and employee count are its
latest rows effective by the day (org_parents, org_employees), and its member count is the
number of roll spans open that day (a member whose transfer out is pending still counts at
the releasing union, as on the write side)."""

from __future__ import annotations

import datetime
from typing import Any

from domain.errors import InvalidValue
from projections.read_models.rolls import paging
from projections.read_models.rows import KNOWN_NOW_US, day_int, iso_day
from projections.read_models.schema import TableSet
from projections.read_models.scope import org_filter
from storage.database import Store

LEVELS = ("national", "province", "city", "county", "township", "base", "joint_base")
STATUSES = ("active", "dissolved")
MAX_QUERY_CHARS = 50

_COLUMNS = (
    "code",
    "name",
    "level",
    "parent_code",
    "region_code",
    "founded_on",
    "employer_code",
    "employee_count",
    "status",
    "dissolved_on",
    "member_count",
)


def _latest(table: str, alias: str) -> str:
    """The row of `table` (org_parents, org_employees) in force on :d for o.code."""
    return f"""{alias}.code = o.code AND {alias}.valid_from <= :d AND NOT EXISTS (
        SELECT 1 FROM {table} q WHERE q.code = {alias}.code AND q.valid_from <= :d
          AND (q.valid_from > {alias}.valid_from
               OR (q.valid_from = {alias}.valid_from AND q.position > {alias}.position)))"""


class OrganizationQueries:
    def __init__(self, store: Store, tables: TableSet) -> None:
        self.store = store
        self.tables = tables

    def _select(
        self, with_clause: str, where: str, params: dict[str, Any], limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        t = self.tables.table
        parents, employees, spans = t("org_parents"), t("org_employees"), t("roll_spans")
        base = (
            f"FROM {t('organizations')} o"
            f" JOIN {parents} p ON {_latest(parents, 'p')}"
            f" LEFT JOIN {employees} e ON {_latest(employees, 'e')}"
            f" WHERE {where}"
        )
        members = (
            f"(SELECT COUNT(*) FROM {spans} s WHERE s.organization_code = o.code"
            " AND s.valid_from <= :d AND (s.closed_at_us IS NULL OR s.valid_to > :d))"
        )
        columns = (
            "o.code, o.name, o.level, p.parent_code, o.region_code, o.founded_on,"
            " o.employer_code, e.employee_count, o.status, o.dissolved_on, " + members
        )
        with self.store.reader() as cur:
            cur.execute(self.store.sql(f"{with_clause} SELECT COUNT(*) {base}"), params)
            total = int(cur.fetchone()[0])
            cur.execute(
                self.store.sql(
                    f"{with_clause} SELECT {columns} {base} ORDER BY o.code"
                    " LIMIT :limit OFFSET :offset"
                ),
                {**params, "limit": limit, "offset": offset},
            )
            rows = cur.fetchall()
        items = []
        for row in rows:
            item = dict(zip(_COLUMNS, row, strict=True))
            item["founded_on"] = iso_day(item["founded_on"])
            item["dissolved_on"] = iso_day(item["dissolved_on"])
            item["member_count"] = int(item["member_count"])
            items.append(item)
        return total, items

    def children(
        self, code: str, *, day: datetime.date, page: int, page_size: int
    ) -> dict[str, Any]:
        """The active unions directly below `code` on `day`, in code order."""
        limit, offset = paging(page, page_size)
        params: dict[str, Any] = {"d": day_int(day), "parent": code}
        total, items = self._select(
            "", "p.parent_code = :parent AND o.status = 'active'", params, limit, offset
        )
        return {"items": items, "page": page, "page_size": page_size, "total": total}

    def lookup(
        self,
        *,
        within: str | None,
        day: datetime.date,
        q: str | None = None,
        level: str | None = None,
        parent_code: str | None = None,
        status: str | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> dict[str, Any]:
        """Unions whose name or code contains `q`, optionally of a level, under a parent, in a
        status, within the subtree of `within` (None: the whole deployment) on `day`."""
        limit, offset = paging(page, page_size)
        params: dict[str, Any] = {"d": day_int(day), "tree_day": day_int(day), "k": KNOWN_NOW_US}
        with_clause, where = "", "1 = 1"
        if within is not None:
            with_clause, where = org_filter(self.tables, "o.code", "subtree", within, params)
        if q is not None:
            if not isinstance(q, str) or not 1 <= len(q.strip()) <= MAX_QUERY_CHARS:
                raise InvalidValue("q", f"q is 1 to {MAX_QUERY_CHARS} characters")
            # LIKE's wildcards in the text are taken literally.
            text = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["q"] = f"%{text}%"
            params["q_code"] = f"%{text.upper()}%"
            where += " AND (o.name LIKE :q ESCAPE '\\' OR o.code LIKE :q_code ESCAPE '\\')"
        if level is not None:
            if level not in LEVELS:
                raise InvalidValue("level", f"level is one of {', '.join(LEVELS)}")
            params["level"] = level
            where += " AND o.level = :level"
        if parent_code is not None:
            params["parent"] = parent_code
            where += " AND p.parent_code = :parent"
        if status is not None:
            if status not in STATUSES:
                raise InvalidValue("status", "status is active or dissolved")
            params["status"] = status
            where += " AND o.status = :status"
        total, items = self._select(with_clause, where, params, limit, offset)
        return {"items": items, "page": page, "page_size": page_size, "total": total}
