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
from projections.rolls import paging
from projections.rows import amount, day_int, from_micros, iso_day
from projections.schema import TableSet
from projections.scope import org_filter
from projections.store import Store

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

    def _sums(self, code: str, scope: str, tree_day: int, k_us: int, select: str,
              where: str, params: dict[str, Any], group: str) -> list[tuple]:
        params = {**params, "tree_day": tree_day, "k": k_us}
        with_clause, org_where = org_filter(self.tables, "l.organization_code", scope, code,
                                            params)
        sql = (f"{with_clause} SELECT {select} FROM {self.lines_table} l"
               f" WHERE {org_where} AND l.recorded_at_us <= :k AND {where} GROUP BY {group}")
        with self.store.reader() as cur:
            cur.execute(self.store.sql(sql), params)
            return cur.fetchall()

    def balance_sheet(self, code: str, *, as_of: datetime.date, k_us: int,
                      scope: str) -> dict[str, Any]:
        d = day_int(as_of)
        rows = self._sums(code, scope, d, k_us,
                          "l.account_code, SUM(l.debit_fen) - SUM(l.credit_fen)",
                          "l.effective_on <= :d", {"d": d}, "l.account_code")
        normal = {acct: _normal(acct, int(signed)) for acct, signed in rows}
        totals_fen: dict[AccountKind, int] = defaultdict(int)
        for acct, fen in normal.items():
            totals_fen[ACCOUNTS[acct].kind] += fen
        shown = _roll_up(normal)
        lines = [
            {"account_code": a.code, "account_name": a.name, "kind": a.kind.value,
             "kind_name": KIND_LABELS[a.kind], "amount": amount(shown.get(a.code, 0))}
            for a in ACCOUNTS.values() if a.kind in BALANCE_KINDS
        ]
        assets = totals_fen[AccountKind.ASSET]
        liabilities = totals_fen[AccountKind.LIABILITY]
        net_assets = totals_fen[AccountKind.NET_ASSETS]
        surplus = totals_fen[AccountKind.INCOME] - totals_fen[AccountKind.EXPENDITURE]
        right = liabilities + net_assets + surplus
        return {
            "organization_code": code, "scope": scope, "as_of": as_of.isoformat(),
            "lines": lines,
            "totals": {
                "assets": amount(assets), "liabilities": amount(liabilities),
                "net_assets": amount(net_assets),
                "income": amount(totals_fen[AccountKind.INCOME]),
                "expenditure": amount(totals_fen[AccountKind.EXPENDITURE]),
                "surplus": amount(surplus),
                "liabilities_and_net_assets": amount(right),
            },
            "balanced": assets == right,
        }

    def income_expenditure(self, code: str, *, date_from: datetime.date,
                           date_to: datetime.date, k_us: int, scope: str) -> dict[str, Any]:
        _check_period(date_from, date_to)
        rows = self._sums(
            code, scope, day_int(date_to), k_us,
            "l.account_code, l.earmarked, SUM(l.debit_fen) - SUM(l.credit_fen)",
            "l.effective_on >= :from AND l.effective_on <= :to",
            {"from": day_int(date_from), "to": day_int(date_to)},
            "l.account_code, l.earmarked")
        earmarked: dict[str, int] = defaultdict(int)
        general: dict[str, int] = defaultdict(int)
        for acct, flag, signed in rows:
            if ACCOUNTS[acct].kind not in FLOW_KINDS:
                continue
            (earmarked if flag else general)[acct] += _normal(acct, int(signed))
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
            lines.append({"account_code": a.code, "account_name": a.name,
                          "kind": a.kind.value, "kind_name": KIND_LABELS[a.kind],
                          "earmarked": amount(e), "general": amount(g), "amount": amount(e + g)})
        figures = {}
        for column in ("earmarked", "general"):
            income, spent = totals[f"income_{column}"], totals[f"expenditure_{column}"]
            figures[f"income_{column}"] = income
            figures[f"expenditure_{column}"] = spent
            figures[f"surplus_{column}"] = income - spent
        for key in ("income", "expenditure", "surplus"):
            figures[key] = figures[f"{key}_earmarked"] + figures[f"{key}_general"]
        return {
            "organization_code": code, "scope": scope, "from": date_from.isoformat(),
            "to": date_to.isoformat(), "lines": lines,
            "totals": {k: amount(v) for k, v in figures.items()},
            "surplus": amount(figures["surplus"]),
        }

    def trial_balance(self, code: str, *, date_from: datetime.date, date_to: datetime.date,
                      k_us: int, scope: str) -> dict[str, Any]:
        _check_period(date_from, date_to)
        rows = self._sums(
            code, scope, day_int(date_to), k_us,
            "l.account_code,"
            " SUM(CASE WHEN l.effective_on < :from THEN l.debit_fen - l.credit_fen ELSE 0 END),"
            " SUM(CASE WHEN l.effective_on >= :from THEN l.debit_fen ELSE 0 END),"
            " SUM(CASE WHEN l.effective_on >= :from THEN l.credit_fen ELSE 0 END)",
            "l.effective_on <= :to", {"from": day_int(date_from), "to": day_int(date_to)},
            "l.account_code")
        opening = {a: int(o) for a, o, _, _ in rows}
        debit = {a: int(dr) for a, _, dr, _ in rows}
        credit = {a: int(cr) for a, _, _, cr in rows}
        shown_open, shown_dr, shown_cr = _roll_up(opening), _roll_up(debit), _roll_up(credit)
        lines = []
        for a in ACCOUNTS.values():
            o, dr, cr = shown_open.get(a.code, 0), shown_dr.get(a.code, 0), shown_cr.get(a.code, 0)
            lines.append({
                "account_code": a.code, "account_name": a.name, "kind": a.kind.value,
                "opening": amount(_normal(a.code, o)), "debit": amount(dr),
                "credit": amount(cr), "closing": amount(_normal(a.code, o + dr - cr)),
            })
        total_dr, total_cr = sum(debit.values()), sum(credit.values())
        opening_signed = sum(opening.values())
        return {
            "organization_code": code, "scope": scope, "from": date_from.isoformat(),
            "to": date_to.isoformat(), "lines": lines,
            "totals": {"debit": amount(total_dr), "credit": amount(total_cr),
                       "opening_difference": amount(opening_signed),
                       "closing_difference": amount(opening_signed + total_dr - total_cr)},
            "balanced": total_dr == total_cr and opening_signed == 0,
        }

    def journal(self, code: str, *, date_from: datetime.date, date_to: datetime.date,
                k_us: int, scope: str, page: int, page_size: int) -> dict[str, Any]:
        _check_period(date_from, date_to)
        limit, offset = paging(page, page_size)
        params: dict[str, Any] = {"from": day_int(date_from), "to": day_int(date_to),
                                  "tree_day": day_int(date_to), "k": k_us}
        with_clause, org_where = org_filter(self.tables, "l.organization_code", scope, code,
                                            params)
        base = (f"FROM {self.lines_table} l WHERE {org_where} AND l.recorded_at_us <= :k"
                " AND l.effective_on >= :from AND l.effective_on <= :to")
        vouchers = self.tables.table("vouchers")
        with self.store.reader() as cur:
            cur.execute(self.store.sql(f"{with_clause} SELECT COUNT(*) {base}"), params)
            total = int(cur.fetchone()[0])
            cur.execute(self.store.sql(
                # The page is chosen first; only its lines are joined to their vouchers.
                f"{with_clause} SELECT l.voucher_id, l.effective_on, l.account_code,"
                " l.debit_fen, l.credit_fen, l.earmarked, l.counterparty, l.organization_code,"
                " l.position, l.line_no, l.recorded_at_us, l.kind, v.description, v.reverses,"
                " CASE WHEN v.reversed_at_us <= :k THEN v.reversed_by END"
                f" FROM (SELECT * {base}"
                " ORDER BY l.effective_on, l.position, l.line_no LIMIT :limit OFFSET :offset) l"
                f" JOIN {vouchers} v ON v.voucher_id = l.voucher_id"
                " ORDER BY l.effective_on, l.position, l.line_no"),
                {**params, "limit": limit, "offset": offset})
            rows = cur.fetchall()
        items = [
            {"voucher_id": voucher_id, "effective_on": iso_day(day), "account_code": acct,
             "account_name": ACCOUNTS[acct].name, "debit": amount(dr), "credit": amount(cr),
             "earmarked": bool(flag), "counterparty": counterparty,
             "organization_code": org, "description": description, "kind": kind,
             "reverses": reverses, "reversed_by": reversed_by,
             "position": position, "line_no": line_no, "recorded_at": from_micros(at),
             "event": {"position": position, "stream_id": voucher_id, "version": 1,
                       "type": "ledger:Voucher.Posted"}}
            for (voucher_id, day, acct, dr, cr, flag, counterparty, org, position, line_no, at,
                 kind, description, reverses, reversed_by) in rows
        ]
        return {"items": items, "page": page, "page_size": page_size, "total": total}
