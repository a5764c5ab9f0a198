"""Fund statements from the ledger lines: 工会01表 资产负债表, 工会02表 收入支出表,
科目余额表 (trial balance) and 序时账 (journal), per union or summed over its subtree.

Every figure is a sum of integer fen over ledger lines filtered by effective date, recorded
time (known_at) and organisation scope. A parent account's line (504) is the sum of its own
postings and its subaccounts' (50404, 50405); totals add each posting once.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from domain.accounts import ACCOUNTS, AccountKind
from domain.errors import InvalidValue
from projections.read_models import ledger_sums
from projections.read_models.rolls import paging
from projections.read_models.rows import KNOWN_NOW_US, amount, day_int, from_micros, iso_day
from projections.read_models.schema import TableSet
from projections.read_models.scope import org_filter
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
    ) -> list[dict[tuple[str, int], tuple[int, int]]]:
        """Per range (effective dates, inclusive): (account, earmarked) -> (debit, credit)
        summed over the lines recorded by k_us in the scope, read from ledger_sums for the
        whole years and months of the range and from the lines for its edge days."""
        params: dict[str, Any] = {"tree_day": tree_day, "k": k_us}
        with_clause, _ = org_filter(self.tables, "code", scope, code, params)

        def org_in(alias: str) -> str:
            return org_filter(self.tables, f"{alias}.organization_code", scope, code, params)[1]

        selects: list[str] = []
        ctes: list[str] = []
        for bucket, (first, last) in enumerate(ranges):
            selects += ledger_sums.flow_sql(
                self.tables, bucket, ledger_sums.split(first, last), org_in, k_us, params, ctes
            )
        result: list[dict[tuple[str, int], tuple[int, int]]] = [{} for _ in ranges]
        if not selects:
            return result
        if ctes:
            with_clause = (f"{with_clause}, " if with_clause else "WITH ") + ", ".join(ctes)
        sql = (
            f"{with_clause} SELECT f.bucket, f.account_code, f.earmarked,"
            " SUM(f.debit_fen), SUM(f.credit_fen)"
            f" FROM ({' UNION ALL '.join(selects)}) f"
            " GROUP BY f.bucket, f.account_code, f.earmarked"
        )
        with self.store.reader() as cur:
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

    @staticmethod
    def _signed(flows: dict[tuple[str, int], tuple[int, int]]) -> dict[str, int]:
        """Debit-positive per account, both columns together."""
        result: dict[str, int] = defaultdict(int)
        for (acct, _), (debit, credit) in flows.items():
            result[acct] += debit - credit
        return result

    def balance_sheet(
        self, code: str, *, as_of: datetime.date, k_us: int, scope: str
    ) -> dict[str, Any]:
        (flows,) = self._flows(code, scope, day_int(as_of), k_us, [(datetime.date.min, as_of)])
        normal = {acct: _normal(acct, signed) for acct, signed in self._signed(flows).items()}
        totals_fen: dict[AccountKind, int] = defaultdict(int)
        for acct, fen in normal.items():
            totals_fen[ACCOUNTS[acct].kind] += fen
        shown = _roll_up(normal)
        lines = [
            {
                "account_code": a.code,
                "account_name": a.name,
                "kind": a.kind.value,
                "kind_name": KIND_LABELS[a.kind],
                "amount": amount(shown.get(a.code, 0)),
            }
            for a in ACCOUNTS.values()
            if a.kind in BALANCE_KINDS
        ]
        assets = totals_fen[AccountKind.ASSET]
        liabilities = totals_fen[AccountKind.LIABILITY]
        net_assets = totals_fen[AccountKind.NET_ASSETS]
        surplus = totals_fen[AccountKind.INCOME] - totals_fen[AccountKind.EXPENDITURE]
        right = liabilities + net_assets + surplus
        return {
            "organization_code": code,
            "scope": scope,
            "as_of": as_of.isoformat(),
            "lines": lines,
            "totals": {
                "assets": amount(assets),
                "liabilities": amount(liabilities),
                "net_assets": amount(net_assets),
                "income": amount(totals_fen[AccountKind.INCOME]),
                "expenditure": amount(totals_fen[AccountKind.EXPENDITURE]),
                "surplus": amount(surplus),
                "liabilities_and_net_assets": amount(right),
            },
            "balanced": assets == right,
        }

    def _year_end_flows(
        self,
        code: str,
        scope: str,
        k_us: int,
        date_from: datetime.date,
        date_to: datetime.date,
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """(account, earmarked) -> (debit, credit) of the year-end vouchers (年终结账) in the
        range and of their reversals: both are dated 31 December, so only those days are read."""
        days = [
            day_int(datetime.date(year, 12, 31))
            for year in range(date_from.year, date_to.year + 1)
            if date_from <= datetime.date(year, 12, 31) <= date_to
        ]
        if not days:
            return {}
        params: dict[str, Any] = {"tree_day": day_int(date_to), "k": k_us}
        params.update({f"d{i}": day for i, day in enumerate(days)})
        with_clause, org_where = org_filter(self.tables, "l.organization_code", scope, code, params)
        vouchers = self.tables.table("vouchers")
        sql = (
            f"{with_clause} SELECT l.account_code, l.earmarked, SUM(l.debit_fen),"
            f" SUM(l.credit_fen) FROM {self.lines_table} l"
            f" JOIN {vouchers} v ON v.voucher_id = l.voucher_id"
            f" LEFT JOIN {vouchers} o ON o.voucher_id = v.reverses"
            f" WHERE {org_where} AND l.recorded_at_us <= :k"
            f" AND l.effective_on IN ({', '.join(f':d{i}' for i in range(len(days)))})"
            " AND (v.kind = 'year_end' OR o.kind = 'year_end')"
            " GROUP BY l.account_code, l.earmarked"
        )
        with self.store.reader() as cur:
            cur.execute(self.store.sql(sql), params)
            rows = cur.fetchall()
        return {(acct, int(flag)): (int(debit), int(credit)) for acct, flag, debit, credit in rows}

    def income_expenditure(
        self, code: str, *, date_from: datetime.date, date_to: datetime.date, k_us: int, scope: str
    ) -> dict[str, Any]:
        _check_period(date_from, date_to)
        (flows,) = self._flows(code, scope, day_int(date_to), k_us, [(date_from, date_to)])
        # 02表 shows what the year earned and spent: the year-end close is left out.
        closing = self._year_end_flows(code, scope, k_us, date_from, date_to)
        for key, (debit, credit) in closing.items():
            had_debit, had_credit = flows.get(key, (0, 0))
            flows[key] = (had_debit - debit, had_credit - credit)
        earmarked: dict[str, int] = defaultdict(int)
        general: dict[str, int] = defaultdict(int)
        for (acct, flag), (debit, credit) in flows.items():
            if ACCOUNTS[acct].kind not in FLOW_KINDS:
                continue
            (earmarked if flag else general)[acct] += _normal(acct, debit - credit)
        totals: dict[str, int] = defaultdict(int)
        for column, figures in (("earmarked", earmarked), ("general", general)):
            for acct, fen in figures.items():
                totals[f"{ACCOUNTS[acct].kind.value}_{column}"] += fen
        shown_e, shown_g = _roll_up(earmarked), _roll_up(general)
        lines = []
        for a in ACCOUNTS.values():
            if a.kind not in FLOW_KINDS:
                continue
            e, g = shown_e.get(a.code, 0), shown_g.get(a.code, 0)
            lines.append(
                {
                    "account_code": a.code,
                    "account_name": a.name,
                    "kind": a.kind.value,
                    "kind_name": KIND_LABELS[a.kind],
                    "earmarked": amount(e),
                    "general": amount(g),
                    "amount": amount(e + g),
                }
            )
        figures = {}
        for column in ("earmarked", "general"):
            income, spent = totals[f"income_{column}"], totals[f"expenditure_{column}"]
            figures[f"income_{column}"] = income
            figures[f"expenditure_{column}"] = spent
            figures[f"surplus_{column}"] = income - spent
        for key in ("income", "expenditure", "surplus"):
            figures[key] = figures[f"{key}_earmarked"] + figures[f"{key}_general"]
        return {
            "organization_code": code,
            "scope": scope,
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
            "lines": lines,
            "totals": {k: amount(v) for k, v in figures.items()},
            "surplus": amount(figures["surplus"]),
        }

    def trial_balance(
        self, code: str, *, date_from: datetime.date, date_to: datetime.date, k_us: int, scope: str
    ) -> dict[str, Any]:
        _check_period(date_from, date_to)
        before = date_from - datetime.timedelta(days=1) if date_from > datetime.date.min else None
        ranges = [(date_from, date_to)] + ([(datetime.date.min, before)] if before else [])
        flows = self._flows(code, scope, day_int(date_to), k_us, ranges)
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
            "lines": lines,
            "totals": {
                "debit": amount(total_dr),
                "credit": amount(total_cr),
                "opening_difference": amount(opening_signed),
                "closing_difference": amount(opening_signed + total_dr - total_cr),
            },
            "balanced": total_dr == total_cr and opening_signed == 0,
        }

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
    ) -> dict[str, Any]:
        _check_period(date_from, date_to)
        limit, offset = paging(page, page_size)
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
        vouchers = self.tables.table("vouchers")
        with self.store.reader() as cur:
            cur.execute(self.store.sql(f"{with_clause} SELECT COUNT(*) {base}"), params)
            total = int(cur.fetchone()[0])
            cur.execute(
                self.store.sql(
                    # The page is chosen first; only its lines are joined to their vouchers.
                    f"{with_clause} SELECT l.voucher_id, l.effective_on, l.account_code,"
                    " l.debit_fen, l.credit_fen, l.earmarked, l.counterparty, l.organization_code,"
                    " l.position, l.line_no, l.recorded_at_us, l.kind, v.description, v.reverses,"
                    " CASE WHEN v.reversed_at_us <= :k THEN v.reversed_by END, l.number"
                    f" FROM (SELECT * {base}"
                    " ORDER BY l.effective_on, l.position, l.line_no LIMIT :limit OFFSET :offset) l"
                    f" JOIN {vouchers} v ON v.voucher_id = l.voucher_id"
                    " ORDER BY l.effective_on, l.position, l.line_no"
                ),
                {**params, "limit": limit, "offset": offset},
            )
            rows = cur.fetchall()
        items = [
            {
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
            for (
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
            ) in rows
        ]
        return {"items": items, "page": page, "page_size": page_size, "total": total}
