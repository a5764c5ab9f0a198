"""会员名册: the roll of a union (or its subtree) as of a date, as known at a moment; its
summary counts and its changes with the national change codes.

A roll span (member, union, status) counts as of day D known at moment K when it was opened
by K, started on or before D, and had not ended by D as known at K (its closing event
recorded after K, or its end date after D).

A roll is ordered by (joined_on, member_id, opened_position): a total order (the last two are
a span's key), so a page is well defined and can be found by seeking instead of counting.
Deep pages of a big roll are the costly case: an OFFSET walks every row before the page. So:

- every page is read in one snapshot (REPEATABLE READ on PostgreSQL; SQLite's reads are
  snapshots already), its total and its rows alike;
- a page in the second half of the roll is read backwards from the end, so no page walks
  more than half of the roll;
- the second time the same roll (union, scope, status, as of, as known) is asked for, its
  every ANCHOR_STRIDE-th key is kept in memory with the number of rows before it and the
  roll's total (RollAnchors), and a page is read by seeking to the anchor before it: a few
  hundred index entries whatever the page;
- anchors are kept for one version of the read models (the projection's position, which
  every batch of events moves, and the identity of the live tables, which a rebuild
  switches), read in the same snapshot as the page. At a later version of the same tables
  they are moved rather than computed again: the spans opened or closed since (two small
  indexes find them) say which rows joined the roll or left it before each anchor. A roll
  paged under a steady stream of writes so keeps its anchors. They are computed afresh when
  the tree moved (a subtree's unions may differ), when too much changed, or when the rows
  between two anchors have grown past ANCHOR_MAX_GAP.
"""

from __future__ import annotations

import bisect
import datetime
import functools
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.errors import InvalidValue
from domain.identity import IdNumber
from domain.members import CHANGE_CODES
from projections.read_models.kept import Kept
from projections.read_models.roll_counts import COUNTS, counts_by_root_sql, counts_sql
from projections.read_models.rows import day_int, from_micros, iso_day
from projections.read_models.schema import TableSet
from projections.read_models.scope import (
    SubtreeListings,
    listed_in,
    org_filter,
    reads_by_root,
    tree_settled,
)
from storage.database import Store
from storage.pii_cipher import PiiCipher

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
ROLL_STATUSES = ("active", "retained", "transfer_pending")

# One anchor (a row's sort key) every ANCHOR_STRIDE rows of a roll: a page is then found by
# walking at most ANCHOR_STRIDE - 1 rows past its anchor.
ANCHOR_STRIDE = 100
# Smaller rolls are always paged by counting: walking them costs less than keeping anchors.
ANCHOR_MIN_ROWS = 2_000
# The memory anchors may take in one process: at most this many rolls and keys in all
# (a key is a date, a member id and a position: about 150 bytes).
ANCHOR_MAX_ROLLS = 32
ANCHOR_MAX_KEYS = 200_000
# Anchors moved to a later version are computed afresh instead when more spans than this
# changed since (in the whole deployment), or when a page could have to walk more rows than
# ANCHOR_MAX_GAP past its anchor (rows joining between two anchors widen the gap).
ANCHOR_MAX_CHANGES = 20_000
ANCHOR_MAX_GAP = 10 * ANCHOR_STRIDE

# On the roll as of :d known at :k (the module's docstring): started, and not ended...
_STARTED = "s.opened_at_us <= :k AND s.valid_from <= :d"
_NOT_ENDED = "s.closed_at_us > :k OR s.valid_to > :d"
_ON_ROLL = f"{_STARTED} AND (s.closed_at_us IS NULL OR {_NOT_ENDED})"
# ... and as the span stood at the projection's position :since (one closed later was open).
_WAS_ON_ROLL = (
    f"s.opened_position <= :since AND {_STARTED}"
    f" AND (s.closed_position IS NULL OR s.closed_position > :since OR {_NOT_ENDED})"
)
_ROLL_ORDER = ("s.joined_on", "s.member_id", "s.opened_position")
_ROLL_COLUMNS = (
    "s.member_id, s.organization_code, s.status, s.joined_on, s.transfer_to, s.transfer_reason"
)
_CHANGE_COLUMNS = (
    "c.member_id, c.change_code, c.reason_code, c.organization_code,"
    " c.effective_on, c.recorded_at_us, c.position, c.reinstated"
)
_CHANGE_ORDER = "c.effective_on, c.position, c.line_no"
# Rows an export reads at a time (and decrypts the details of in one query).
EXPORT_CHUNK_ROWS = 2_000
_DETAILS_KNOWN = """d.recorded_at_us <= :k
    AND (d.superseded_at_us IS NULL OR d.superseded_at_us > :k)"""


def paging(page: int, page_size: int) -> tuple[int, int]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidValue("page", "page is a whole number from 1")
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not (1 <= page_size <= MAX_PAGE_SIZE)
    ):
        raise InvalidValue("page_size", f"page_size is between 1 and {MAX_PAGE_SIZE}")
    return page_size, (page - 1) * page_size


@dataclass(frozen=True)
class Anchors:
    """A roll at one version of the read models: its total, and some of its sort keys each
    with the number of the roll's rows that sort before it (its rank). A key need not be a
    row's any more (the row may have left the roll since): a page is still found by seeking
    to the key and walking the difference of ranks."""

    version: tuple
    total: int
    ranks: list[int]
    keys: list[tuple]

    def widest_gap(self) -> int:
        """The most rows a page may have to walk past its anchor."""
        edges = [0, *self.ranks, self.total]
        return max(b - a for a, b in itertools.pairwise(edges))

    def moved(self, version: tuple, changes: list[tuple[tuple, int]]) -> Anchors:
        """The same keys at a later version, given the rows that joined the roll (+1) or left
        it (-1) since, by sort key: each anchor's rank moves by the changes before its key."""
        # shift[i]: the changes between anchor i - 1 and anchor i (the last: after them all).
        shift = [0] * (len(self.keys) + 1)
        for key, sign in changes:
            shift[bisect.bisect_right(self.keys, key)] += sign
        before = itertools.accumulate(shift[:-1])
        ranks = [rank + moved for rank, moved in zip(self.ranks, before, strict=True)]
        total = self.total + sum(sign for _, sign in changes)
        return Anchors(version, total, ranks, self.keys)


class RollAnchors:
    """The anchors of the rolls lately asked for (at most ANCHOR_MAX_ROLLS, ANCHOR_MAX_KEYS
    keys in all). A roll's anchors are computed the second time it is asked for: a roll
    asked for once is paged by counting, which costs less than computing its anchors."""

    def __init__(self) -> None:
        self._rolls: Kept[Anchors] = Kept(ANCHOR_MAX_ROLLS, ANCHOR_MAX_KEYS)
        self._lock = threading.Lock()
        # The rolls asked for without anchors, least recently first.
        self._asked: OrderedDict[tuple, None] = OrderedDict()

    def latest(self, key: tuple) -> Anchors | None:
        """The roll's anchors at whatever version they were kept for."""
        return self._rolls.get(key)

    def asked_before(self, key: tuple) -> bool:
        """Whether the roll was asked for before (and notes that it was)."""
        with self._lock:
            before = key in self._asked
            self._asked[key] = None
            self._asked.move_to_end(key)
            while len(self._asked) > 4 * ANCHOR_MAX_ROLLS:
                self._asked.popitem(last=False)
            return before

    def put(self, key: tuple, anchors: Anchors) -> None:
        self._rolls.put(key, anchors, len(anchors.keys))


REINSTATED_NAME = "恢复会籍"  # reinstated after retention: change code 1, no reason


class RollQueries:
    def __init__(self, store: Store, tables: TableSet, cipher: PiiCipher) -> None:
        self.store = store
        self.tables = tables
        self.cipher = cipher
        self.anchors = RollAnchors()
        self.listings = SubtreeListings(store, tables)

    def _t(self, name: str) -> str:
        return self.tables.table(name)

    def counts(
        self,
        cur: Any,
        code: str,
        scope: str,
        d: int,
        k_us: int,
        listed: dict[str, list[str]] | None = None,
        settled: Callable[[], bool] | None = None,
    ) -> dict[str, int]:
        """The roll's counts as of day d known at k_us, from the counts the projector keeps
        (roll_counts.py): a sum over the unions in scope, not over their members. listed: the
        subtree, when already read (scope.subtree_listed); settled: the read's own
        _settled, when it has one."""
        params: dict[str, Any] = {"d": d, "tree_day": d, "k": k_us, "root": code}
        if reads_by_root(scope, k_us, settled or self._settled(cur, d)):
            cur.execute(self.store.sql(counts_by_root_sql(self.tables)), params)
            return dict(zip(COUNTS, (int(v) for v in cur.fetchone()), strict=True))
        if listed is not None:
            where, bound = listed_in(self.store, "organization_code", listed)
            with_clause = ""
            params.update(bound)
        else:
            with_clause, where = org_filter(self.tables, "organization_code", scope, code, params)
        sql = counts_sql(self._t("roll_counts"), self._t("roll_totals"), where)
        cur.execute(self.store.sql(f"{with_clause} {sql}"), params)
        return dict(zip(COUNTS, (int(v) for v in cur.fetchone()), strict=True))

    def _tree_settled(self, cur: Any, tree_day: int) -> bool:
        return tree_settled(self.store, cur, self.tables, tree_day)

    def _settled(self, cur: Any, tree_day: int) -> Callable[[], bool]:
        """Whether the tree is settled after tree_day, asked of the database at most once
        (a read asks it for its subtree's listing, then for its counts)."""
        return functools.cache(lambda: self._tree_settled(cur, tree_day))

    def _total(
        self,
        cur: Any,
        key: tuple,
        listed: dict[str, list[str]] | None,
        settled: Callable[[], bool],
    ) -> int:
        """The number of rows of a roll page's roll (key: code, scope, status, day, k_us)."""
        code, scope, status, d, k_us = key
        counts = self.counts(cur, code, scope, d, k_us, listed, settled)
        if status == "retained":
            return counts["retained"]
        if status == "transfer_pending":
            return counts["pending"]
        if status == "active":
            return counts["members"] - counts["retained"] - counts["pending"]
        return counts["members"]

    def _details(self, cur: Any, member_ids: list[str], k_us: int) -> dict[str, dict[str, Any]]:
        if not member_ids:
            return {}
        params: dict[str, Any] = {"k": k_us}
        marks = []
        for i, m in enumerate(member_ids):
            params[f"m{i}"] = m
            marks.append(f":m{i}")
        cur.execute(
            self.store.sql(
                f"SELECT d.member_id, d.name_enc, d.id_number_enc, d.mobile_enc, d.migrant_worker,"
                f" d.new_employment_form FROM {self._t('member_details')} d"
                f" WHERE d.member_id IN ({', '.join(marks)}) AND {_DETAILS_KNOWN}"
            ),
            params,
        )
        result = {}
        for member_id, name, id_number, mobile, migrant, new_form in cur.fetchall():
            number = self.cipher.decrypt(id_number, field="id_number")
            identity = IdNumber(number)
            result[member_id] = {
                "name": self.cipher.decrypt(name, field="name"),
                "id_number": number,
                "sex": identity.sex,
                "birth_year": identity.birth_date.year,
                "birth_date": identity.birth_date.isoformat(),
                "mobile": self.cipher.decrypt(mobile, field="mobile"),
                "migrant_worker": bool(migrant),
                "new_employment_form": bool(new_form),
            }
        return result

    def _page(
        self,
        cur: Any,
        with_clause: str,
        base: str,
        params: dict[str, Any],
        limit: int,
        offset: int,
        *,
        columns: str,
        order: str,
    ) -> tuple[int, list[Any]]:
        """The total of a filtered list and one page of it, read in the same snapshot."""
        cur.execute(self.store.sql(f"{with_clause} SELECT COUNT(*) {base}"), params)
        total = int(cur.fetchone()[0])
        cur.execute(
            self.store.sql(
                f"{with_clause} SELECT {columns} {base} ORDER BY {order}"
                " LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": limit, "offset": offset},
        )
        return total, cur.fetchall()

    def _snapshot(self, cur: Any) -> tuple:
        """Makes the reader's transaction one snapshot (PostgreSQL reads in READ COMMITTED
        otherwise: a statement per snapshot) and returns the version of the read models it
        sees: the projection's position and the identity of the live tables."""
        position = self._t("position")
        if self.store.is_sqlite:
            cur.execute(f"SELECT position FROM {position} WHERE name = 'position'")
            at = cur.fetchone()[0]
            cur.execute("PRAGMA schema_version")
            return at, cur.fetchone()[0]
        self.store.one_snapshot(cur)
        cur.execute(
            f"SELECT position, to_regclass('{self._t('roll_spans')}')::oid::bigint"
            f" FROM {position} WHERE name = 'position'"
        )
        return tuple(cur.fetchone())

    def _roll_rows(
        self,
        cur: Any,
        with_clause: str,
        where: str,
        params: dict[str, Any],
        key: tuple,
        version: tuple,
        limit: int,
        offset: int,
        columns: str,
        settled: Callable[[], bool],
        listed: dict[str, list[str]] | None,
    ) -> tuple[int, list[Any]]:
        """The total of a roll and one page of it (see the module's docstring). where: the
        condition on the spans of the roll's unions and status, listed: its subtree's
        listing, if any (_roll_query)."""
        base = self._on_roll(where)
        kept = self.anchors.latest(key)
        anchors = kept if kept is not None and kept.version == version else None
        if anchors is None:
            total = self._total(cur, key, listed, settled)
            # A read whose snapshot is older than the kept anchors (another read kept them
            # meanwhile) pages by counting: computing them would replace newer ones.
            behind = kept is not None and kept.version[1] == version[1] and kept.version > version
            if kept is not None and not behind and total >= ANCHOR_MIN_ROWS:
                anchors = self._moved(cur, with_clause, where, params, key, kept, version)
                if anchors is not None and anchors.total != total:
                    # The spans and the counts the projector keeps disagree: page by the
                    # counts, as without anchors, and say so.
                    log.warning(
                        "roll %s: moved anchors total %d, counted %d", key, anchors.total, total
                    )
                    anchors = None
            if (
                anchors is None
                and not behind
                and total >= ANCHOR_MIN_ROWS
                and self.anchors.asked_before(key)
            ):
                anchors = self._computed(cur, with_clause, base, params, version, total)
            if anchors is not None:
                self.anchors.put(key, anchors)
        if anchors is not None:
            return anchors.total, self._anchored_page(
                cur, with_clause, base, params, anchors, limit, offset, columns
            )
        if offset >= total:
            return total, []
        order = ", ".join(_ROLL_ORDER)
        if 2 * offset < total:
            cur.execute(
                self.store.sql(
                    f"{with_clause} SELECT {columns} {base} ORDER BY {order}"
                    " LIMIT :limit OFFSET :offset"
                ),
                {**params, "limit": limit, "offset": offset},
            )
            return total, cur.fetchall()
        # The second half: read backwards from the end, the page's rows then reversed.
        end = min(offset + limit, total)
        backwards = ", ".join(f"{c} DESC" for c in _ROLL_ORDER)
        cur.execute(
            self.store.sql(
                f"{with_clause} SELECT {columns} {base} ORDER BY {backwards}"
                " LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": end - offset, "offset": total - end},
        )
        return total, cur.fetchall()[::-1]

    def _computed(
        self,
        cur: Any,
        with_clause: str,
        base: str,
        params: dict[str, Any],
        version: tuple,
        total: int,
    ) -> Anchors | None:
        """A roll's every ANCHOR_STRIDE-th key, read whole. None when they cannot be kept:
        the rows read are not the counted total, or the database orders the keys otherwise
        than Python compares them (a collation), which moving them relies on."""
        order = ", ".join(_ROLL_ORDER)
        cur.execute(
            self.store.sql(
                f"{with_clause} SELECT a.joined_on, a.member_id, a.opened_position FROM"
                f" (SELECT {order}, ROW_NUMBER() OVER (ORDER BY {order}) AS rn {base}) a"
                " WHERE (a.rn - 1) / :stride * :stride = a.rn - 1 ORDER BY a.rn"
            ),
            {**params, "stride": ANCHOR_STRIDE},
        )
        keys = [tuple(r) for r in cur.fetchall()]
        if len(keys) != -(-total // ANCHOR_STRIDE):
            return None
        if any(a >= b for a, b in itertools.pairwise(keys)):
            return None
        return Anchors(version, total, [i * ANCHOR_STRIDE for i in range(len(keys))], keys)

    def _moved(
        self,
        cur: Any,
        with_clause: str,
        where: str,
        params: dict[str, Any],
        key: tuple,
        earlier: Anchors,
        version: tuple,
    ) -> Anchors | None:
        """The roll's anchors of an earlier version of the same tables, moved to this one by
        the spans opened or closed since; None when they cannot be (module docstring)."""
        since, tables = earlier.version
        if tables != version[1] or since >= version[0]:
            return None
        if key[1] == "subtree":
            cur.execute(
                self.store.sql(
                    f"SELECT 1 FROM {self._t('org_parents')} WHERE position > :since LIMIT 1"
                ),
                {"since": since},
            )
            if cur.fetchone() is not None:
                return None
        spans = self._t("roll_spans")
        changed = {"since": since, "cap": ANCHOR_MAX_CHANGES + 1}
        # The spans opened and closed since in the whole deployment, each by its own index,
        # counted no further than the cap.
        cur.execute(
            self.store.sql(
                f"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM {spans}"
                "   WHERE opened_position > :since LIMIT :cap) o),"
                f" (SELECT COUNT(*) FROM (SELECT 1 FROM {spans}"
                "   WHERE closed_position > :since LIMIT :cap) c)"
            ),
            changed,
        )
        if sum(cur.fetchone()) > ANCHOR_MAX_CHANGES:
            return None
        # Then those of the roll's unions and status, as they stood at :since and stand now.
        # Read from the changed spans on (CROSS JOIN: SQLite's planner would otherwise walk
        # every span of the roll's unions by their index).
        order = ", ".join(_ROLL_ORDER)
        cur.execute(
            self.store.sql(
                f"{with_clause} SELECT {order},"
                f" CASE WHEN {_WAS_ON_ROLL} THEN 1 ELSE 0 END,"
                f" CASE WHEN {_ON_ROLL} THEN 1 ELSE 0 END"
                f" FROM (SELECT member_id, opened_position FROM {spans}"
                "   WHERE opened_position > :since"
                f"  UNION SELECT member_id, opened_position FROM {spans}"
                "   WHERE closed_position > :since) c"
                f" CROSS JOIN {spans} s"
                " WHERE s.member_id = c.member_id AND s.opened_position = c.opened_position"
                f" AND {where}"
            ),
            {**params, "since": since},
        )
        changes = [((j, m, p), now - was) for j, m, p, was, now in cur.fetchall() if now != was]
        moved = earlier.moved(version, changes)
        return moved if moved.widest_gap() <= ANCHOR_MAX_GAP else None

    def _anchored_page(
        self,
        cur: Any,
        with_clause: str,
        base: str,
        params: dict[str, Any],
        anchors: Anchors,
        limit: int,
        offset: int,
        columns: str,
    ) -> list[Any]:
        """One page, read from the last anchor at or before it: the rows from its key on,
        past the rows between its rank and the page."""
        if offset >= anchors.total:
            return []
        order = ", ".join(_ROLL_ORDER)
        i = bisect.bisect_right(anchors.ranks, offset) - 1
        if i < 0:  # before the first anchor (rows joined the roll before it)
            seek, skip, at = "", offset, {}
        else:
            joined_on, member_id, opened_position = anchors.keys[i]
            seek = f" AND ({order}) >= (:a_joined, :a_member, :a_opened)"
            skip = offset - anchors.ranks[i]
            at = {"a_joined": joined_on, "a_member": member_id, "a_opened": opened_position}
        cur.execute(
            self.store.sql(
                f"{with_clause} SELECT {columns} {base}{seek}"
                f" ORDER BY {order} LIMIT :limit OFFSET :offset"
            ),
            {**params, **at, "limit": limit, "offset": skip},
        )
        return cur.fetchall()

    def _roll_query(
        self,
        code: str,
        as_of: datetime.date,
        k_us: int,
        scope: str,
        status: str | None,
        cur: Any = None,
        settled: Callable[[], bool] | None = None,
    ) -> tuple[str, str, dict[str, Any], dict[str, list[str]] | None]:
        """The roll's WITH clause, the condition on its spans `s` of their unions and status
        (on the roll or not: _on_roll adds that), their parameters, and the subtree's listing.

        cur (a subtree): the subtree is read first and passed as one parameter
        (scope.subtree_listed, scope.listed_in), so that the plan suits how much of the roll
        table the subtree holds: for a big one it walks the roll order index (roll_spans'
        second) and stops after the page, instead of sorting every member of the subtree; for
        a small one it reads each union's rows by the first index and sorts those."""
        d = day_int(as_of)
        params: dict[str, Any] = {"d": d, "tree_day": d, "k": k_us}
        listed = None
        if cur is not None and scope == "subtree":
            org_filter(self.tables, "s.organization_code", scope, code, params)  # checks
            listed = self.listings.listed(cur, code, d, k_us, settled or self._settled(cur, d))
            where, bound = listed_in(self.store, "s.organization_code", listed)
            with_clause = ""
            params.update(bound)
        else:
            with_clause, where = org_filter(self.tables, "s.organization_code", scope, code, params)
        if status is not None:
            if status not in ROLL_STATUSES:
                raise InvalidValue("status", f"status is one of {', '.join(ROLL_STATUSES)}")
            where += " AND s.status = :status"
            params["status"] = status
        return with_clause, where, params, listed

    def _on_roll(self, where: str) -> str:
        """The FROM … WHERE of the spans that match `where` and are on the roll."""
        return f"FROM {self._t('roll_spans')} s WHERE {where} AND {_ON_ROLL}"

    @staticmethod
    def _roll_items(spans: list[Any], details: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "member_id": member_id,
                **details[member_id],
                "status": state,
                "organization_code": org,
                "joined_on": iso_day(joined_on),
                "pending_transfer": None
                if transfer_to is None
                else {"to_organization_code": transfer_to, "reason_code": transfer_reason},
            }
            for member_id, org, state, joined_on, transfer_to, transfer_reason in spans
        ]

    def roll(
        self,
        code: str,
        *,
        as_of: datetime.date,
        k_us: int,
        scope: str,
        status: str | None,
        page: int,
        page_size: int,
    ) -> dict[str, Any]:
        limit, offset = paging(page, page_size)
        with self.store.reader() as cur:
            version = self._snapshot(cur)
            settled = self._settled(cur, day_int(as_of))
            with_clause, where, params, listed = self._roll_query(
                code, as_of, k_us, scope, status, cur, settled
            )
            total, spans = self._roll_rows(
                cur,
                with_clause,
                where,
                params,
                (code, scope, status, params["d"], k_us),
                version,
                limit,
                offset,
                columns=_ROLL_COLUMNS,
                settled=settled,
                listed=listed,
            )
            details = self._details(cur, [r[0] for r in spans], k_us)
        items = self._roll_items(spans, details)
        return {"items": items, "page": page, "page_size": page_size, "total": total}

    def whole_roll(
        self, code: str, *, as_of: datetime.date, k_us: int, scope: str, status: str | None
    ) -> Iterator[list[dict[str, Any]]]:
        """The whole roll in the order of its pages, a chunk of rows at a time, read in one
        snapshot (an export: a bounded number of rows in memory whatever the roll's size)."""
        with_clause, where, params, _ = self._roll_query(code, as_of, k_us, scope, status)
        sql = (
            f"{with_clause} SELECT {_ROLL_COLUMNS} {self._on_roll(where)}"
            f" ORDER BY {', '.join(_ROLL_ORDER)}"
        )
        with self.store.reader() as cur:
            self._snapshot(cur)
            for spans in self.store.chunks(cur, sql, params, EXPORT_CHUNK_ROWS):
                details = self._details(cur, [r[0] for r in spans], k_us)
                yield self._roll_items(spans, details)

    def summary(self, code: str, *, as_of: datetime.date, k_us: int, scope: str) -> dict[str, Any]:
        d = day_int(as_of)
        with self.store.reader() as cur:
            self.store.one_snapshot(cur)
            eparams: dict[str, Any] = {"d": d, "tree_day": d, "k": k_us}
            e_with, e_where = org_filter(self.tables, "e.code", scope, code, eparams)
            listed = None
            settled = self._settled(cur, d)
            if scope == "subtree":
                # The subtree listed once, for the employees and (unless read by root) the counts.
                listed = self.listings.listed(cur, code, d, k_us, settled)
                e_where, bound = listed_in(self.store, "e.code", listed)
                e_with = ""
                eparams.update(bound)
            counts = self.counts(cur, code, scope, d, k_us, listed, settled)
            cur.execute(self.store.sql(self._employees_sql(e_with, e_where)), eparams)
            employees = int(cur.fetchone()[0] or 0)
        members, retained, women = counts["members"], counts["retained"], counts["women"]
        migrant, new_form = counts["migrant"], counts["new_form"]
        rate = None
        if employees:
            rate = str(
                # 入会率: working members only; retained members (保留会籍) do not count.
                (Decimal(members - retained) / Decimal(employees)).quantize(
                    Decimal("0.0001"), rounding=ROUND_HALF_UP
                )
            )
        return {
            "members": members,
            "retained": retained,
            "women": women,
            "migrant_workers": migrant,
            "new_employment_form": new_form,
            "employees": employees,
            "membership_rate": rate,
        }

    def _employees_sql(self, e_with: str, e_where: str) -> str:
        """职工人数 summed over the unions e_where admits (not dissolved by :d known at :k),
        each union's latest count on or before :d."""
        employees_table = self._t("org_employees")
        orgs = self._t("organizations")
        return (
            f"{e_with} SELECT SUM(e.employee_count) FROM {employees_table} e"
            f" JOIN {orgs} o ON o.code = e.code"
            f" WHERE {e_where} AND e.valid_from <= :d AND e.recorded_at_us <= :k"
            " AND NOT (o.dissolved_on IS NOT NULL AND o.dissolved_on <= :d"
            "          AND o.dissolved_at_us <= :k)"
            f" AND NOT EXISTS (SELECT 1 FROM {employees_table} q WHERE q.code = e.code"
            "   AND q.valid_from <= :d AND q.recorded_at_us <= :k"
            "   AND (q.valid_from > e.valid_from"
            "        OR (q.valid_from = e.valid_from AND q.position > e.position)))"
        )

    def _changes_query(
        self, code: str, date_from: datetime.date, date_to: datetime.date, k_us: int, scope: str
    ) -> tuple[str, str, dict[str, Any]]:
        if date_from > date_to:
            raise InvalidValue("from", "from is on or before to")
        params: dict[str, Any] = {
            "from": day_int(date_from),
            "to": day_int(date_to),
            "tree_day": day_int(date_to),
            "k": k_us,
        }
        with_clause, where = org_filter(self.tables, "c.organization_code", scope, code, params)
        base = (
            f"FROM {self._t('roll_changes')} c WHERE {where}"
            " AND c.effective_on >= :from AND c.effective_on <= :to AND c.recorded_at_us <= :k"
        )
        return with_clause, base, params

    @staticmethod
    def _change_items(rows: list[Any], details: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "member_id": m,
                "name": details[m]["name"],
                "id_number": details[m]["id_number"],
                "change_code": change,
                "change_name": REINSTATED_NAME if back else CHANGE_CODES[change],
                "reinstated": bool(back),
                "reason_code": reason,
                "organization_code": org,
                "effective_on": iso_day(day),
                "recorded_at": from_micros(at),
                "position": position,
            }
            for m, change, reason, org, day, at, position, back in rows
        ]

    def changes(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
        page: int,
        page_size: int,
    ) -> dict[str, Any]:
        limit, offset = paging(page, page_size)
        with_clause, base, params = self._changes_query(code, date_from, date_to, k_us, scope)
        with self.store.reader() as cur:
            total, rows = self._page(
                cur,
                with_clause,
                base,
                params,
                limit,
                offset,
                columns=_CHANGE_COLUMNS,
                order=_CHANGE_ORDER,
            )
            details = self._details(cur, sorted({r[0] for r in rows}), k_us)
        items = self._change_items(rows, details)
        return {"items": items, "page": page, "page_size": page_size, "total": total}

    def whole_changes(
        self, code: str, *, date_from: datetime.date, date_to: datetime.date, k_us: int, scope: str
    ) -> Iterator[list[dict[str, Any]]]:
        """Every change of the period in order, a chunk at a time, in one snapshot."""
        with_clause, base, params = self._changes_query(code, date_from, date_to, k_us, scope)
        sql = f"{with_clause} SELECT {_CHANGE_COLUMNS} {base} ORDER BY {_CHANGE_ORDER}"
        with self.store.reader() as cur:
            self._snapshot(cur)
            for rows in self.store.chunks(cur, sql, params, EXPORT_CHUNK_ROWS):
                details = self._details(cur, sorted({r[0] for r in rows}), k_us)
                yield self._change_items(rows, details)

    def changes_by_month(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
    ) -> list[dict[str, Any]]:
        """How many membership changes of each code took effect in each month of the period
        (the rows changes() lists, counted): [{"month": "YYYY-MM", "counts": {code: n}}], every
        month of the period in order, months without a change included."""
        if date_from > date_to:
            raise InvalidValue("from", "from is on or before to")
        params: dict[str, Any] = {
            "from": day_int(date_from),
            "to": day_int(date_to),
            "tree_day": day_int(date_to),
            "k": k_us,
        }
        with_clause, where = org_filter(self.tables, "c.organization_code", scope, code, params)
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    f"{with_clause} SELECT c.effective_on / 100, c.change_code, COUNT(*)"
                    f" FROM {self._t('roll_changes')} c WHERE {where}"
                    " AND c.effective_on >= :from AND c.effective_on <= :to"
                    " AND c.recorded_at_us <= :k"
                    " GROUP BY c.effective_on / 100, c.change_code"
                ),
                params,
            )
            rows = cur.fetchall()
        found: dict[int, dict[int, int]] = {}
        for month, change, count in rows:
            found.setdefault(int(month), {})[int(change)] = int(count)
        months = []
        year, month = date_from.year, date_from.month
        while (year, month) <= (date_to.year, date_to.month):
            months.append(
                {"month": f"{year:04d}-{month:02d}", "counts": found.get(year * 100 + month, {})}
            )
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return months

    def history(self, member_id: str) -> list[dict[str, Any]]:
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    "SELECT change_code, reason_code, organization_code, effective_on,"
                    f" recorded_at_us, position, reinstated FROM {self._t('roll_changes')}"
                    " WHERE member_id = ? ORDER BY position, line_no"
                ),
                (member_id,),
            )
            rows = cur.fetchall()
        return [
            {
                "change_code": change,
                "change_name": REINSTATED_NAME if back else CHANGE_CODES[change],
                "reinstated": bool(back),
                "reason_code": reason,
                "organization_code": org,
                "effective_on": iso_day(day),
                "recorded_at": from_micros(at),
                "position": position,
            }
            for change, reason, org, day, at, position, back in rows
        ]

    def member_ids_for(self, id_number_hash: str) -> list[str]:
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    f"SELECT DISTINCT member_id FROM {self._t('member_details')}"
                    " WHERE id_number_hash = ?"
                ),
                (id_number_hash,),
            )
            return [r[0] for r in cur.fetchall()]
