"""Fund statements from the ledger lines: 工会01表 资产负债表, 工会02表 收入支出表,
科目余额表 (trial balance) and 序时账 (journal), per union or summed over its subtree.

Every figure is a sum of integer fen over ledger lines filtered by effective date, recorded
time (known_at) and organisation scope. A parent account's line (504) is the sum of its own
postings and its subaccounts' (50404, 50405); totals add each posting once.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from domain.accounts import (
    ACCOUNTS,
    LEVY_INCOME,
    PAYABLE_DOWN,
    PAYABLE_UP,
    SUBSIDY_TO_LOWER,
    AccountKind,
)
from domain.errors import InvalidValue
from projections.read_models import ledger_sums, rolls, subtree_sums
from projections.read_models.rolls import paging
from projections.read_models.rows import KNOWN_NOW_US, amount, day_int, from_micros, iso_day
from projections.read_models.schema import TableSet
from projections.read_models.scope import org_filter, reads_by_root, tree_settled
from storage.database import Store

BALANCE_KINDS = (AccountKind.ASSET, AccountKind.LIABILITY, AccountKind.NET_ASSETS)
FLOW_KINDS = (AccountKind.INCOME, AccountKind.EXPENDITURE)
KIND_LABELS = {
    AccountKind.ASSET: "资产",
    AccountKind.LIABILITY: "负债",
    AccountKind.NET_ASSETS: "净资产",
    AccountKind.INCOME: "收入",
    AccountKind.EXPENDITURE: "支出",
}


def _normal(code: str, signed_fen: int) -> int:
    """A debit-positive sum turned to the account's normal side (assets, expenditure: debit)."""
    return signed_fen if ACCOUNTS[code].kind.debit_normal else -signed_fen


def _roll_up(by_account: dict[str, int]) -> dict[str, int]:
    """Adds each subaccount's figure to its parent's line as well."""
    result: dict[str, int] = defaultdict(int)
    for code, fen in by_account.items():
        result[code] += fen
        parent = ACCOUNTS[code].parent
        if parent is not None:
            result[parent] += fen
    return result


def _year_end_days(date_from: datetime.date, date_to: datetime.date) -> tuple[int, ...]:
    """The 31 Decembers from date_from to date_to (day numbers): the only days a year-end
    voucher or its reversal can be dated."""
    return tuple(
        day_int(datetime.date(year, 12, 31))
        for year in range(date_from.year, date_to.year + 1)
        if date_from <= datetime.date(year, 12, 31) <= date_to
    )


def _check_period(date_from: datetime.date, date_to: datetime.date) -> None:
    if date_from > date_to:
        raise InvalidValue("from", "from is on or before to")


class StatementQueries:
    def __init__(self, store: Store, tables: TableSet) -> None:
        self.store = store
        self.tables = tables
        self.lines_table = tables.table("ledger_lines")

    def _flows(
        self,
        code: str,
        scope: str,
        tree_day: int,
        k_us: int,
        ranges: list[tuple[datetime.date, datetime.date]],
        consolidated: bool = False,
    ) -> list[dict[tuple[str, int], tuple[int, int]]]:
        """Per range, the summed flows; consolidated, less what moved inside the subtree.
        A range given twice (02表's period is often its year to date) is read once; each
        range still gets a dict of its own, which the caller may change."""
        distinct = list(dict.fromkeys(ranges))
        flows = self._summed_flows(code, scope, tree_day, k_us, distinct)
        if consolidated:
            if scope != "subtree":
                raise InvalidValue("consolidated", "consolidated needs scope=subtree")
            for bucket, (first, last) in enumerate(distinct):
                _eliminate(flows[bucket], self._internal(code, tree_day, k_us, first, last))
        return [dict(flows[distinct.index(r)]) for r in ranges]

    def _internal(
        self, code: str, tree_day: int, k_us: int, first: datetime.date, last: datetime.date
    ) -> list[tuple[str, int, int, int]]:
        """(account, earmarked, debit, credit) of the lines that moved money inside the
        subtree: payables (211, 212) owed to a member of the subtree, and both sides of a
        subsidy from one member to another (508 and 403). Read from the lines themselves:
        the sums do not keep counterparties."""
        params: dict[str, Any] = {
            "tree_day": tree_day,
            "k": k_us,
            "from": day_int(first),
            "to": day_int(last),
            "up": PAYABLE_UP,
            "down": PAYABLE_DOWN,
            "to_lower": SUBSIDY_TO_LOWER,
            "from_higher": f"{SUBSIDY_TO_LOWER_INCOME}%",
        }
        with_clause, inside = org_filter(
            self.tables, "l.organization_code", "subtree", code, params
        )
        lines = self.lines_table
        dated = "l.recorded_at_us <= :k AND l.effective_on >= :from AND l.effective_on <= :to"

        vouchers = self.tables.table("vouchers")

        def vouchers_with(account: str) -> str:
            # A subsidy, or the reversal of one: a year-end close touches 508 and 403 of one
            # union too, and is no movement between two.
            return (
                f"SELECT l.voucher_id FROM {lines} l"
                f" JOIN {vouchers} v ON v.voucher_id = l.voucher_id"
                f" LEFT JOIN {vouchers} o ON o.voucher_id = v.reverses"
                f" WHERE {inside} AND {dated} AND l.account_code {account}"
                " AND (v.kind = 'subsidy' OR o.kind = 'subsidy')"
            )

        sql = (
            f"{with_clause} SELECT l.account_code, l.earmarked, SUM(l.debit_fen),"
            f" SUM(l.credit_fen) FROM {lines} l WHERE {inside} AND {dated} AND ("
            "(l.account_code IN (:up, :down) AND l.counterparty IN (SELECT code FROM subtree))"
            " OR ((l.account_code = :to_lower OR l.account_code LIKE :from_higher)"
            f" AND l.voucher_id IN ({vouchers_with('= :to_lower')})"
            f" AND l.voucher_id IN ({vouchers_with('LIKE :from_higher')})))"
            " GROUP BY l.account_code, l.earmarked"
        )
        with self.store.reader() as cur:
            cur.execute(self.store.sql(sql), params)
            return [(a, int(e), int(d), int(c)) for a, e, d, c in cur.fetchall()]

    def _summed_flows(
        self,
        code: str,
        scope: str,
        tree_day: int,
        k_us: int,
        ranges: list[tuple[datetime.date, datetime.date]],
    ) -> list[dict[tuple[str, int], tuple[int, int]]]:
        """Per range (effective dates, inclusive): (account, earmarked) -> (debit, credit)
        summed over the lines recorded by k_us in the scope, read from ledger_sums for the
        whole years and months of the range and from the lines for its edge days. A subtree
        known now, on a day after which the tree has not changed, reads its whole years and
        months from its root's rows alone (subtree_sums.py)."""
        result: list[dict[tuple[str, int], tuple[int, int]]] = [{} for _ in ranges]
        with self.store.reader() as cur:
            self.store.one_snapshot(cur)  # the tree's check and the sums
            by_root = reads_by_root(scope, k_us, lambda: self._tree_settled(cur, tree_day))
            sql, params = self._flows_sql(code, scope, tree_day, k_us, ranges, by_root)
            if sql is None:
                return result
            if self.store.is_sqlite or k_us >= KNOWN_NOW_US:
                cur.execute(self.store.sql(sql), params)
            else:
                # Planned for this k every time: which rows are split at k decides the plan,
                # and a prepared statement's generic plan (psycopg prepares a query run five
                # times) was measured several times slower for some k.
                cur.execute(self.store.sql(sql), params, prepare=False)
            rows = cur.fetchall()
        for bucket, acct, flag, debit, credit in rows:
            result[int(bucket)][(acct, int(flag))] = (int(debit), int(credit))
        return result

    def _tree_settled(self, cur: Any, tree_day: int) -> bool:
        return tree_settled(self.store, cur, self.tables, tree_day)

    def _flows_sql(
        self,
        code: str,
        scope: str,
        tree_day: int,
        k_us: int,
        ranges: list[tuple[datetime.date, datetime.date]],
        by_root: bool,
    ) -> tuple[str | None, dict[str, Any]]:
        """_summed_flows' query and its parameters (None: nothing to read)."""
        params: dict[str, Any] = {"tree_day": tree_day, "k": k_us}
        with_clause, _ = org_filter(self.tables, "code", scope, code, params)

        def org_in(alias: str) -> str:
            return org_filter(self.tables, f"{alias}.organization_code", scope, code, params)[1]

        def root_in(alias: str) -> str:
            return f"{alias}.organization_code = :root"

        selects: list[str] = []
        ctes: list[str] = []
        walks = not by_root  # reads by root walk the tree only for edge days
        for bucket, (first, last) in enumerate(ranges):
            pieces = ledger_sums.split(first, last)
            walks = walks or bool(pieces.days)
            if not by_root:
                selects += ledger_sums.flow_sql(
                    self.tables, bucket, pieces, org_in, k_us, params, ctes
                )
                continue
            whole = ledger_sums.Pieces(years=pieces.years, months=pieces.months)
            for table in ("ledger_sums", "subtree_sums"):
                selects += ledger_sums.flow_sql(
                    self.tables, bucket, whole, root_in, k_us, params, ctes, sums=table
                )
            edges = ledger_sums.Pieces(days=pieces.days)
            selects += ledger_sums.flow_sql(self.tables, bucket, edges, org_in, k_us, params, ctes)
        if not selects:
            return None, params
        if not walks:
            with_clause = ""
        if ctes:
            with_clause = (f"{with_clause}, " if with_clause else "WITH ") + ", ".join(ctes)
        sql = (
            f"{with_clause} SELECT f.bucket, f.account_code, f.earmarked,"
            " SUM(f.debit_fen), SUM(f.credit_fen)"
            f" FROM ({' UNION ALL '.join(selects)}) f"
            " GROUP BY f.bucket, f.account_code, f.earmarked"
        )
        return sql, params

    def last_posting(self, k_us: int) -> int:
        """The position of the last posting recorded by k (0 before the first)."""
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    f"SELECT position FROM {self.lines_table} WHERE recorded_at_us <= ?"
                    " ORDER BY position DESC LIMIT 1"
                ),
                (k_us,),
            )
            row = cur.fetchone()
        return 0 if row is None else int(row[0])

    @staticmethod
    def _signed(flows: dict[tuple[str, int], tuple[int, int]]) -> dict[str, int]:
        """Debit-positive per account, both columns together."""
        result: dict[str, int] = defaultdict(int)
        for (acct, _), (debit, credit) in flows.items():
            result[acct] += debit - credit
        return result

    def balance_sheet(
        self, code: str, *, as_of: datetime.date, k_us: int, scope: str, consolidated: bool = False
    ) -> dict[str, Any]:
        """工会01表: each line's 年初数 (opening: the balance before the first posting of as_of's
        year) and 期末数 (closing, also `amount`: the balance on as_of). Income and expenditure
        not yet closed into 321/322 by a year-end close show as their own net-assets line
        (收支结余, 未结转), so that the sheet balances on its face."""
        ranges = [(datetime.date.min, as_of)]
        if as_of.year > datetime.MINYEAR:
            ranges.append((datetime.date.min, datetime.date(as_of.year - 1, 12, 31)))
        flows = self._flows(code, scope, day_int(as_of), k_us, ranges, consolidated)
        columns = [_balances(flows[0]), _balances(flows[1] if len(flows) > 1 else {})]
        closing, opening = columns
        lines = [
            {
                "account_code": a.code,
                "account_name": a.name,
                "kind": a.kind.value,
                "kind_name": KIND_LABELS[a.kind],
                "opening": amount(opening.shown.get(a.code, 0)),
                "closing": amount(closing.shown.get(a.code, 0)),
                "amount": amount(closing.shown.get(a.code, 0)),
            }
            for a in ACCOUNTS.values()
            if a.kind in BALANCE_KINDS
        ]
        lines.append(
            {
                "account_code": None,
                "account_name": UNCLOSED_SURPLUS,
                "kind": AccountKind.NET_ASSETS.value,
                "kind_name": KIND_LABELS[AccountKind.NET_ASSETS],
                "opening": amount(opening.surplus),
                "closing": amount(closing.surplus),
                "amount": amount(closing.surplus),
            }
        )

        def both(name: str) -> dict[str, str]:
            return {
                "opening": amount(getattr(opening, name)),
                "closing": amount(getattr(closing, name)),
            }

        return {
            "organization_code": code,
            "scope": scope,
            "as_of": as_of.isoformat(),
            "consolidated": consolidated,
            "lines": lines,
            "totals": {
                "assets": both("assets"),
                "liabilities": both("liabilities"),
                "net_assets": both("net_assets"),
                "liabilities_and_net_assets": both("right"),
                "surplus": both("surplus"),
            },
            "balanced": all(c.assets == c.right for c in columns),
        }

    def _year_end_flows(
        self, code: str, scope: str, k_us: int, days: tuple[int, ...], date_to: datetime.date
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """(account, earmarked) -> (debit, credit) of the year-end vouchers (年终结账) and of
        their reversals on `days` (the 31 Decembers of a range: _year_end_days), in the scope
        as the tree stands on date_to. A subtree known now whose tree is settled reads the
        root's own lines and its closing rows in subtree_sums, not every union's lines."""
        if not days:
            return {}
        tree_day = day_int(date_to)
        params: dict[str, Any] = {"tree_day": tree_day, "k": k_us}
        params.update({f"d{i}": day for i, day in enumerate(days)})
        on_days = ", ".join(f":d{i}" for i in range(len(days)))
        closing = subtree_sums.closing_lines(self.tables, "l")
        with self.store.reader() as cur:
            self.store.one_snapshot(cur)  # the tree's check and the lines
            with_clause, org_where = org_filter(
                self.tables, "l.organization_code", scope, code, params
            )
            below = ""
            if reads_by_root(scope, k_us, lambda: self._tree_settled(cur, tree_day)):
                with_clause, org_where = "", "l.organization_code = :root"
                below = (
                    " UNION ALL SELECT account_code, earmarked, debit_fen, credit_fen"
                    f" FROM {self.tables.table('subtree_sums')} WHERE organization_code = :root"
                    f" AND months = {subtree_sums.CLOSING} AND period IN ({on_days})"
                )
            sql = (
                f"{with_clause} SELECT f.account_code, f.earmarked, SUM(f.debit_fen),"
                " SUM(f.credit_fen) FROM ("
                " SELECT l.account_code, l.earmarked, l.debit_fen, l.credit_fen"
                f" FROM {self.lines_table} l WHERE {org_where} AND l.recorded_at_us <= :k"
                f" AND l.effective_on IN ({on_days}) AND {closing}{below}) f"
                " GROUP BY f.account_code, f.earmarked"
            )
            cur.execute(self.store.sql(sql), params)
            rows = cur.fetchall()
        return {(acct, int(flag)): (int(debit), int(credit)) for acct, flag, debit, credit in rows}

    def income_expenditure(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
        consolidated: bool = False,
    ) -> dict[str, Any]:
        """工会02表 for from..to (earmarked, general, amount), with the filed columns 本月数
        (`month`: the first of to's month to to) and 本年累计数 (`year_to_date`: 1 January of
        to's year to to)."""
        _check_period(date_from, date_to)
        month_start = date_to.replace(day=1)
        year_start = date_to.replace(month=1, day=1)
        flows = self._flows(
            code,
            scope,
            day_int(date_to),
            k_us,
            ranges := [(date_from, date_to), (month_start, date_to), (year_start, date_to)],
            consolidated,
        )
        # 02表 shows what the year earned and spent: the year-end close is left out. The three
        # ranges end on the same day, so they usually hold the same 31 Decembers: each
        # distinct set is read once (over a province's subtree a read costs tens of ms).
        closings: dict[tuple[int, ...], dict[tuple[str, int], tuple[int, int]]] = {}
        for flow, (first, last) in zip(flows, ranges, strict=True):
            days = _year_end_days(first, last)
            if days not in closings:
                closings[days] = self._year_end_flows(code, scope, k_us, days, last)
            closing = closings[days]
            for key, (debit, credit) in closing.items():
                had_debit, had_credit = flow.get(key, (0, 0))
                flow[key] = (had_debit - debit, had_credit - credit)
        period, month, year = (_FlowFigures(f) for f in flows)
        lines = []
        for a in ACCOUNTS.values():
            if a.kind not in FLOW_KINDS:
                continue
            lines.append(
                {
                    "account_code": a.code,
                    "account_name": a.name,
                    "kind": a.kind.value,
                    "kind_name": KIND_LABELS[a.kind],
                    **period.line(a.code),
                    "month": month.line(a.code),
                    "year_to_date": year.line(a.code),
                }
            )
        return {
            "organization_code": code,
            "scope": scope,
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
            "consolidated": consolidated,
            "lines": lines,
            "totals": {
                **period.totals(),
                "month": month.totals(),
                "year_to_date": year.totals(),
            },
            "surplus": amount(period.figures["surplus"]),
        }

    def trial_balance(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
        consolidated: bool = False,
    ) -> dict[str, Any]:
        _check_period(date_from, date_to)
        before = date_from - datetime.timedelta(days=1) if date_from > datetime.date.min else None
        ranges = [(date_from, date_to)] + ([(datetime.date.min, before)] if before else [])
        flows = self._flows(code, scope, day_int(date_to), k_us, ranges, consolidated)
        opening = self._signed(flows[1]) if before else {}
        debit: dict[str, int] = defaultdict(int)
        credit: dict[str, int] = defaultdict(int)
        for (acct, _), (dr, cr) in flows[0].items():
            debit[acct] += dr
            credit[acct] += cr
        shown_open, shown_dr, shown_cr = _roll_up(opening), _roll_up(debit), _roll_up(credit)
        lines = []
        for a in ACCOUNTS.values():
            o, dr, cr = shown_open.get(a.code, 0), shown_dr.get(a.code, 0), shown_cr.get(a.code, 0)
            lines.append(
                {
                    "account_code": a.code,
                    "account_name": a.name,
                    "kind": a.kind.value,
                    "opening": amount(_normal(a.code, o)),
                    "debit": amount(dr),
                    "credit": amount(cr),
                    "closing": amount(_normal(a.code, o + dr - cr)),
                }
            )
        total_dr, total_cr = sum(debit.values()), sum(credit.values())
        opening_signed = sum(opening.values())
        return {
            "organization_code": code,
            "scope": scope,
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
            "consolidated": consolidated,
            "lines": lines,
            "totals": {
                "debit": amount(total_dr),
                "credit": amount(total_cr),
                "opening_difference": amount(opening_signed),
                "closing_difference": amount(opening_signed + total_dr - total_cr),
            },
            "balanced": total_dr == total_cr and opening_signed == 0,
        }

    def _journal_query(
        self,
        code: str,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
        account_code: str | None,
    ) -> tuple[str, str, dict[str, Any]]:
        _check_period(date_from, date_to)
        params: dict[str, Any] = {
            "from": day_int(date_from),
            "to": day_int(date_to),
            "tree_day": day_int(date_to),
            "k": k_us,
        }
        with_clause, org_where = org_filter(self.tables, "l.organization_code", scope, code, params)
        base = (
            f"FROM {self.lines_table} l WHERE {org_where} AND l.recorded_at_us <= :k"
            " AND l.effective_on >= :from AND l.effective_on <= :to"
        )
        if account_code is not None:
            if account_code not in ACCOUNTS:
                raise InvalidValue("account_code", f"no account has code {account_code[:8]!r}")
            # An account and its subaccounts: the chart's codes extend their parent's.
            params["account"] = account_code
            params["account_like"] = f"{account_code}%"
            base += " AND (l.account_code = :account OR l.account_code LIKE :account_like)"
        return with_clause, base, params

    def _journal_rows_sql(self, with_clause: str, inner: str) -> str:
        """Lines chosen by `inner` (a SELECT of ledger_lines rows), joined to their vouchers."""
        return (
            f"{with_clause} SELECT l.voucher_id, l.effective_on, l.account_code,"
            " l.debit_fen, l.credit_fen, l.earmarked, l.counterparty, l.organization_code,"
            " l.position, l.line_no, l.recorded_at_us, l.kind, v.description, v.reverses,"
            " CASE WHEN v.reversed_at_us <= :k THEN v.reversed_by END, l.number"
            f" FROM ({inner}) l"
            f" JOIN {self.tables.table('vouchers')} v ON v.voucher_id = l.voucher_id"
            f" ORDER BY {_JOURNAL_ORDER}"
        )

    def journal(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
        page: int,
        page_size: int,
        account_code: str | None = None,
    ) -> dict[str, Any]:
        limit, offset = paging(page, page_size)
        with_clause, base, params = self._journal_query(
            code, date_from, date_to, k_us, scope, account_code
        )
        with self.store.reader() as cur:
            cur.execute(self.store.sql(f"{with_clause} SELECT COUNT(*) {base}"), params)
            total = int(cur.fetchone()[0])
            # The page is chosen first; only its lines are joined to their vouchers.
            inner = f"SELECT * {base} ORDER BY {_JOURNAL_ORDER} LIMIT :limit OFFSET :offset"
            cur.execute(
                self.store.sql(self._journal_rows_sql(with_clause, inner)),
                {**params, "limit": limit, "offset": offset},
            )
            rows = cur.fetchall()
        items = [_journal_item(row) for row in rows]
        return {"items": items, "page": page, "page_size": page_size, "total": total}

    def whole_journal(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        k_us: int,
        scope: str,
        account_code: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every line of the period in order, a chunk at a time, in one snapshot."""
        with_clause, base, params = self._journal_query(
            code, date_from, date_to, k_us, scope, account_code
        )
        sql = self._journal_rows_sql(with_clause, f"SELECT * {base}")
        with self.store.reader() as cur:
            self.store.one_snapshot(cur)
            for rows in self.store.chunks(cur, sql, params, rolls.EXPORT_CHUNK_ROWS):
                yield [_journal_item(row) for row in rows]


_JOURNAL_ORDER = "l.effective_on, l.position, l.line_no"


def _journal_item(row: Any) -> dict[str, Any]:
    (
        voucher_id,
        day,
        acct,
        dr,
        cr,
        flag,
        counterparty,
        org,
        position,
        line_no,
        at,
        kind,
        description,
        reverses,
        reversed_by,
        number,
    ) = row
    return {
        "voucher_id": voucher_id,
        "number": number,
        "effective_on": iso_day(day),
        "account_code": acct,
        "account_name": ACCOUNTS[acct].name,
        "debit": amount(dr),
        "credit": amount(cr),
        "earmarked": bool(flag),
        "counterparty": counterparty,
        "organization_code": org,
        "description": description,
        "kind": kind,
        "reverses": reverses,
        "reversed_by": reversed_by,
        "position": position,
        "line_no": line_no,
        "recorded_at": from_micros(at),
        "event": {
            "position": position,
            "stream_id": voucher_id,
            "version": 1,
            "type": "ledger:Voucher.Posted",
        },
    }


# A subsidy to a lower union is income of 403 (40301 general, 40302 earmarked) to it.
SUBSIDY_TO_LOWER_INCOME = "403"


def _eliminate(
    flows: dict[tuple[str, int], tuple[int, int]], internal: list[tuple[str, int, int, int]]
) -> None:
    """Consolidation (合并): a subsidy inside the subtree leaves both its sides out (the
    payer's 508, the receiver's 403); what a member owes another member as its levy share
    (211, 212) is the group's own levy income (402), not a debt: so is its remittance, which
    then nets against the receiver's 402."""
    for acct, flag, debit, credit in internal:
        moved_to = LEVY_INCOME if acct in (PAYABLE_UP, PAYABLE_DOWN) else None
        for target, sign in ((acct, -1), (moved_to, 1)):
            if target is None:
                continue
            old_debit, old_credit = flows.get((target, flag), (0, 0))
            flows[(target, flag)] = (old_debit + sign * debit, old_credit + sign * credit)


UNCLOSED_SURPLUS = "收支结余（未结转）"


class _Balances:
    """Balances on one date, each on its account's normal side: per line (a parent's line
    holds its subaccounts) and per kind; `surplus` is income less expenditure not yet closed
    into net assets; `right` is liabilities plus net assets including that surplus."""

    def __init__(self, normal: dict[str, int]) -> None:
        kinds: dict[AccountKind, int] = defaultdict(int)
        for acct, fen in normal.items():
            kinds[ACCOUNTS[acct].kind] += fen
        self.shown = _roll_up(normal)
        self.assets = kinds[AccountKind.ASSET]
        self.liabilities = kinds[AccountKind.LIABILITY]
        self.surplus = kinds[AccountKind.INCOME] - kinds[AccountKind.EXPENDITURE]
        self.net_assets = kinds[AccountKind.NET_ASSETS] + self.surplus
        self.right = self.liabilities + self.net_assets


def _balances(flows: dict[tuple[str, int], tuple[int, int]]) -> _Balances:
    normal: dict[str, int] = defaultdict(int)
    for (acct, _), (debit, credit) in flows.items():
        normal[acct] += _normal(acct, debit - credit)
    return _Balances(normal)


class _FlowFigures:
    """Income and expenditure over one range, earmarked and general, per line and in total."""

    def __init__(self, flows: dict[tuple[str, int], tuple[int, int]]) -> None:
        earmarked: dict[str, int] = defaultdict(int)
        general: dict[str, int] = defaultdict(int)
        for (acct, flag), (debit, credit) in flows.items():
            if ACCOUNTS[acct].kind in FLOW_KINDS:
                (earmarked if flag else general)[acct] += _normal(acct, debit - credit)
        sums: dict[str, int] = defaultdict(int)
        for column, figures in (("earmarked", earmarked), ("general", general)):
            for acct, fen in figures.items():
                sums[f"{ACCOUNTS[acct].kind.value}_{column}"] += fen
        self.figures: dict[str, int] = {}
        for column in ("earmarked", "general"):
            income, spent = sums[f"income_{column}"], sums[f"expenditure_{column}"]
            self.figures[f"income_{column}"] = income
            self.figures[f"expenditure_{column}"] = spent
            self.figures[f"surplus_{column}"] = income - spent
        for key in ("income", "expenditure", "surplus"):
            self.figures[key] = self.figures[f"{key}_earmarked"] + self.figures[f"{key}_general"]
        self.earmarked, self.general = _roll_up(earmarked), _roll_up(general)

    def line(self, code: str) -> dict[str, str]:
        e, g = self.earmarked.get(code, 0), self.general.get(code, 0)
        return {"earmarked": amount(e), "general": amount(g), "amount": amount(e + g)}

    def totals(self) -> dict[str, str]:
        return {key: amount(fen) for key, fen in self.figures.items()}
