"""The registers on the read side: hardship files (困难职工档案), model workers (劳模名册) and
payouts to persons, projected like the roll; their lists and the assistance report.

Personal data (causes, household size, income, names, identity numbers, reasons) is encrypted
in the tables as member details are (storage/pii_cipher.py); queries return it decrypted and
the HTTP layer masks it. The projection handlers take the projector's Batch (typed Any here:
the projector imports this module for its handler table).
"""

from __future__ import annotations

import datetime
import json
from collections import Counter, defaultdict
from typing import Any

from domain.accounts import PROGRAMME_ACCOUNTS
from domain.errors import InvalidValue
from domain.money import Money
from domain.registers import CATEGORIES, CAUSES, LEVELS, one_year_after
from projections.read_models.rows import KNOWN_NOW_US, day_int, int_day, iso_day
from projections.read_models.schema import TableSet
from projections.read_models.scope import org_filter
from storage.database import Store
from storage.pii_cipher import PiiCipher

FILE_STATUSES = ("open", "closed")
# The accounts the registers' programmes pay from, and their parents, for the report's check
# against the ledger (工会02表 504 维权支出, 505 业务支出).
CHECKED_ACCOUNTS = ("50404", "50503")
PARENT_ACCOUNTS = ("504", "505")

# --- projection handlers ------------------------------------------------------------------


def _stored(b: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows of earlier batches read back in this batch, by (table, key): read once, so that a
    second event on the same row in the batch sees the changes the first one made."""
    cache = getattr(b, "_register_rows", None)
    if cache is None:
        cache = b._register_rows = {}
    return cache


def _find(b: Any, table: str, key_column: str, key: str) -> dict[str, Any] | None:
    row = b.inserts[table].get(key)
    if row is not None:
        return row
    cache = _stored(b)
    if (table, key) not in cache:
        rows = b._select(table, f"{key_column} = ?", (key,))
        cache[(table, key)] = rows[0] if rows else None
    return cache[(table, key)]


# The rows of earlier batches that a handler reads, by the topic of its event: the table, and
# the column the event's originator id is looked up in. prefetch() reads them for a whole
# batch at its start, a query per table instead of one per event.
PREFETCH = {
    "ledger:HardshipFile.Reviewed": ("hardship_files", "file_id"),
    "ledger:HardshipFile.Closed": ("hardship_files", "file_id"),
    "ledger:ModelWorker.HonourAdded": ("model_workers", "model_worker_id"),
    "ledger:ModelWorker.Revoked": ("model_workers", "model_worker_id"),
    # files_follow: the files a member who transfers keeps.
    "ledger:Member.TransferAccepted": ("hardship_files", "member_id"),
}
_KEY_COLUMNS = {"hardship_files": "file_id", "model_workers": "model_worker_id"}


def prefetch(b: Any, wanted: dict[tuple[str, str], set[str]]) -> None:
    """Reads the stored rows the batch's events will look up (PREFETCH), into the cache
    _find reads; a key with no stored row is cached as None."""
    cache = _stored(b)
    files_of = _files_of(b)
    for (table, column), ids in wanted.items():
        keys = sorted(ids)
        key_column = _KEY_COLUMNS[table]
        if column == key_column:
            for key in keys:
                cache.setdefault((table, key), None)
        else:
            for key in keys:
                files_of.setdefault(key, [])
        for row in b.select_in(table, column, keys):
            key = row[key_column]
            if cache.get((table, key)) is None:
                cache[(table, key)] = row
            if column != key_column:
                files_of[row[column]].append(key)


def _files_of(b: Any) -> dict[str, list[str]]:
    """Per member, the ids of the stored hardship files prefetched for a transfer."""
    files = getattr(b, "_register_files_of", None)
    if files is None:
        files = b._register_files_of = {}
    return files


def _row(b: Any, table: str, key_column: str, key: str) -> dict[str, Any]:
    row = _find(b, table, key_column, key)
    if row is None:
        raise RuntimeError(f"{table}: no row {key}")
    return row


def _enc(b: Any, origin: str, field: str, value: str | None) -> bytes | None:
    return b.cipher.encrypt(value, field=field, origin=f"{origin}|{b.position}")


def _state(b: Any, file_id: str, kind: str, day: Any, e: Any) -> None:
    b.insert(
        "hardship_states",
        {
            "file_id": file_id,
            "position": b.position,
            "recorded_at_us": b.at_us,
            "kind": kind,
            "valid_from": day_int(day),
            "category": e.category,
            "household_enc": _enc(b, file_id, "household_size", str(e.household_size)),
            "income_enc": _enc(b, file_id, "income_fen", str(e.income_fen)),
        },
    )


def file_opened(b: Any, e: Any) -> None:
    file_id = str(e.originator_id)
    b.insert(
        "hardship_files",
        {
            "file_id": file_id,
            "member_id": e.member_id,
            "serial": e.serial,
            "opened_by": e.organization_code,
            # The member's union when the file is opened (the domain allows no other); a
            # transfer moves it on (files_follow).
            "organization_code": e.organization_code,
            "opened_on": day_int(e.opened_on),
            "position": b.position,
            "recorded_at_us": b.at_us,
            "causes_enc": _enc(b, file_id, "causes", json.dumps(list(e.causes))),
            "status": "open",
            "closed_on": None,
            "closed_position": None,
            "reason_enc": None,
        },
    )
    _state(b, file_id, "opened", e.opened_on, e)


def file_reviewed(b: Any, e: Any) -> None:
    file_id = str(e.originator_id)
    _row(b, "hardship_files", "file_id", file_id)  # a review of a file never opened: a defect
    _state(b, file_id, "reviewed", e.reviewed_on, e)


def file_closed(b: Any, e: Any) -> None:
    file_id = str(e.originator_id)
    row = _row(b, "hardship_files", "file_id", file_id)
    b.update(
        "hardship_files",
        row,
        status="closed",
        closed_on=day_int(e.closed_on),
        closed_position=b.position,
        reason_enc=_enc(b, file_id, "reason", e.reason),
    )


def files_follow(b: Any, member_id: str, organization_code: str) -> None:
    """A transfer accepted: the person's files are kept by the receiving union."""
    rows = [r for r in b.inserts["hardship_files"].values() if r["member_id"] == member_id]
    new = {r["file_id"] for r in rows}
    cache = _stored(b)
    stored_ids = _files_of(b).get(member_id)
    if stored_ids is None:  # not prefetched
        stored_ids = []
        for stored in b._select("hardship_files", "member_id = ?", (member_id,)):
            cache.setdefault(("hardship_files", stored["file_id"]), stored)
            stored_ids.append(stored["file_id"])
    for file_id in stored_ids:
        if file_id not in new:
            rows.append(cache[("hardship_files", file_id)])
    for row in rows:
        b.update("hardship_files", row, organization_code=organization_code)


def _honour(b: Any, worker_id: str, e: Any) -> None:
    b.insert(
        "model_worker_honours",
        {
            "model_worker_id": worker_id,
            "position": b.position,
            "recorded_at_us": b.at_us,
            "honour": e.honour,
            "level": e.level,
            "awarded_year": e.awarded_year,
        },
    )


def worker_registered(b: Any, e: Any) -> None:
    worker_id = str(e.originator_id)
    b.insert(
        "model_workers",
        {
            "model_worker_id": worker_id,
            "member_id": e.member_id,
            "organization_code": e.organization_code,
            "position": b.position,
            "recorded_at_us": b.at_us,
            "id_number_hash": b.cipher.lookup_hash(e.id_number),
            "name_enc": _enc(b, worker_id, "name", e.name),
            "id_number_enc": _enc(b, worker_id, "id_number", e.id_number),
            "level": e.level,
            "first_awarded_year": e.awarded_year,
            "revoked_on": None,
            "revoked_position": None,
            "reason_enc": None,
        },
    )
    _honour(b, worker_id, e)


def worker_honoured(b: Any, e: Any) -> None:
    worker_id = str(e.originator_id)
    row = _row(b, "model_workers", "model_worker_id", worker_id)
    ranks = list(LEVELS)
    b.update(
        "model_workers",
        row,
        level=min(row["level"], e.level, key=ranks.index),
        first_awarded_year=min(row["first_awarded_year"], e.awarded_year),
    )
    _honour(b, worker_id, e)


def worker_revoked(b: Any, e: Any) -> None:
    worker_id = str(e.originator_id)
    row = _row(b, "model_workers", "model_worker_id", worker_id)
    b.update(
        "model_workers",
        row,
        revoked_on=day_int(e.revoked_on),
        revoked_position=b.position,
        reason_enc=_enc(b, worker_id, "reason", e.reason),
    )


def payout_posted(b: Any, e: Any, voucher_id: str, day: int) -> None:
    """A subsidy to a person, or the reversal of one: a person_payouts row."""
    details = e.details or {}
    if e.kind == "subsidy" and "member_id" in details:
        expense = e.postings[0]
        b.insert(
            "person_payouts",
            {
                "voucher_id": voucher_id,
                "position": b.position,
                "recorded_at_us": b.at_us,
                "payer_code": expense.organization_code,
                "programme": details.get("programme"),
                "account_code": expense.account_code,
                "member_id": details["member_id"],
                "hardship_file_id": details.get("hardship_file_id"),
                "model_worker_id": details.get("model_worker_id"),
                "amount_fen": expense.debit_fen,
                "paid_on": day,
                "reverses": None,
            },
        )
    elif e.kind == "reversal" and e.reverses:
        original = _find(b, "person_payouts", "voucher_id", e.reverses)
        if original is None:
            return  # not a payout to a person
        b.insert(
            "person_payouts",
            {
                **{k: v for k, v in original.items() if k != "_stored"},
                "voucher_id": voucher_id,
                "position": b.position,
                "recorded_at_us": b.at_us,
                "amount_fen": -int(original["amount_fen"]),
                "paid_on": day,
                "reverses": e.reverses,
            },
        )


HANDLERS = {
    "ledger:HardshipFile.Opened": file_opened,
    "ledger:HardshipFile.Reviewed": file_reviewed,
    "ledger:HardshipFile.Closed": file_closed,
    "ledger:ModelWorker.Registered": worker_registered,
    "ledger:ModelWorker.HonourAdded": worker_honoured,
    "ledger:ModelWorker.Revoked": worker_revoked,
}


# --- queries ------------------------------------------------------------------------------


def _yuan(fen: int) -> str:
    return str(Money(int(fen)))


class RegisterQueries:
    def __init__(self, store: Store, tables: TableSet, cipher: PiiCipher) -> None:
        self.store = store
        self.tables = tables
        self.cipher = cipher

    def _t(self, name: str) -> str:
        return self.tables.table(name)

    def _select(self, cur: Any, sql: str, params: dict[str, Any]) -> list[tuple]:
        cur.execute(self.store.sql(sql), params)
        return list(cur.fetchall())

    def _files(self, cur: Any, code: str, scope: str, day: int) -> list[dict[str, Any]]:
        """Every file in scope opened on or before day, with its figures as of day."""
        params: dict[str, Any] = {"tree_day": day, "k": KNOWN_NOW_US, "d": day}
        with_clause, where = org_filter(self.tables, "f.organization_code", scope, code, params)
        files = self._select(
            cur,
            f"{with_clause} SELECT f.file_id, f.member_id, f.organization_code, f.opened_by,"
            " f.opened_on, f.causes_enc, f.closed_on, f.reason_enc"
            f" FROM {self._t('hardship_files')} f WHERE {where} AND f.opened_on <= :d"
            " ORDER BY f.organization_code, f.opened_on, f.file_id",
            params,
        )
        states: dict[str, list[tuple]] = defaultdict(list)
        if files:
            ids = [f[0] for f in files]
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = {f"f{n}": v for n, v in enumerate(chunk)}
                for row in self._select(
                    cur,
                    "SELECT file_id, valid_from, position, kind, category, household_enc,"
                    f" income_enc FROM {self._t('hardship_states')}"
                    f" WHERE file_id IN ({', '.join(':' + m for m in marks)})"
                    " ORDER BY file_id, valid_from, position",
                    marks,
                ):
                    states[row[0]].append(row)
        names = self._names(cur, sorted({f[1] for f in files}))
        result = []
        decrypt = self.cipher.decrypt
        for file_id, member_id, org, opened_by, opened_on, causes, closed_on, reason in files:
            history = [s for s in states[file_id] if s[1] <= day] or states[file_id][:1]
            current = history[-1]
            reviews = [s for s in history if s[3] == "reviewed"]
            last_dated = int_day(current[1])
            closed = closed_on is not None and closed_on <= day
            assert last_dated is not None
            due = one_year_after(last_dated)
            result.append(
                {
                    "file_id": file_id,
                    "member_id": member_id,
                    "name": names.get(member_id),
                    "organization_code": org,
                    "opened_by": opened_by,
                    "category": current[4],
                    "causes": json.loads(decrypt(causes, field="causes") or "[]"),
                    "household_size": int(decrypt(current[5], field="household_size") or 0),
                    "monthly_income_per_head": _yuan(
                        int(decrypt(current[6], field="income_fen") or 0)
                    ),
                    "opened_on": iso_day(opened_on),
                    "last_reviewed_on": iso_day(reviews[-1][1]) if reviews else None,
                    "reviews": len(reviews),
                    "review_due": None if closed else due.isoformat(),
                    "overdue": (not closed) and day_int(due) < day,
                    "status": "closed" if closed else "open",
                    "closed_on": iso_day(closed_on) if closed else None,
                    "reason": decrypt(reason, field="reason") if closed else None,
                }
            )
        return result

    def _names(self, cur: Any, member_ids: list[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for i in range(0, len(member_ids), 500):
            chunk = member_ids[i : i + 500]
            marks = {f"m{n}": v for n, v in enumerate(chunk)}
            for member_id, name in self._select(
                cur,
                f"SELECT member_id, name_enc FROM {self._t('member_details')}"
                f" WHERE superseded_position IS NULL"
                f" AND member_id IN ({', '.join(':' + m for m in marks)})",
                marks,
            ):
                found[member_id] = self.cipher.decrypt(name, field="name")
        return found

    def hardship_files(
        self,
        code: str,
        *,
        as_of: datetime.date,
        scope: str,
        status: str | None,
        page: int,
        page_size: int,
        everything: bool = False,
    ) -> dict[str, Any]:
        if status is not None and status not in FILE_STATUSES:
            raise InvalidValue("status", "status is open or closed")
        with self.store.reader() as cur:
            items = self._files(cur, code, scope, day_int(as_of))
        if status is not None:
            items = [f for f in items if f["status"] == status]
        total = len(items)
        if not everything:
            items = items[(page - 1) * page_size : page * page_size]
        return {
            "as_of": as_of.isoformat(),
            "scope": scope,
            "items": items,
            "page": page,
            "page_size": page_size,
            "total": total,
        }

    def _workers(self, cur: Any, code: str, scope: str, day: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"tree_day": day, "k": KNOWN_NOW_US}
        with_clause, where = org_filter(self.tables, "w.organization_code", scope, code, params)
        rows = self._select(
            cur,
            f"{with_clause} SELECT w.model_worker_id, w.member_id, w.organization_code,"
            " w.name_enc, w.id_number_enc, w.level, w.first_awarded_year, w.revoked_on,"
            f" w.reason_enc FROM {self._t('model_workers')} w WHERE {where}"
            " ORDER BY w.organization_code, w.model_worker_id",
            params,
        )
        honours: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for worker_id, honour, level, year in self._select(
            cur,
            f"{with_clause} SELECT h.model_worker_id, h.honour, h.level, h.awarded_year"
            f" FROM {self._t('model_worker_honours')} h JOIN {self._t('model_workers')} w"
            f" ON w.model_worker_id = h.model_worker_id WHERE {where}"
            " ORDER BY h.model_worker_id, h.position",
            params,
        ):
            honours[worker_id].append({"honour": honour, "level": level, "awarded_year": year})
        decrypt = self.cipher.decrypt
        return [
            {
                "model_worker_id": worker_id,
                "member_id": member_id,
                "id_number": decrypt(number, field="id_number"),
                "name": decrypt(name, field="name"),
                "organization_code": org,
                "level": level,
                "first_awarded_year": first,
                "honours": honours[worker_id],
                "status": "revoked" if revoked is not None else "active",
                "revoked_on": iso_day(revoked),
                "reason": decrypt(reason, field="reason"),
            }
            for worker_id, member_id, org, name, number, level, first, revoked, reason in rows
        ]

    def model_workers(
        self,
        code: str,
        *,
        scope: str,
        level: str | None,
        page: int,
        page_size: int,
        today: datetime.date,
        everything: bool = False,
    ) -> dict[str, Any]:
        if level is not None and level not in LEVELS:
            raise InvalidValue("level", f"level is one of {', '.join(LEVELS)}")
        with self.store.reader() as cur:
            items = self._workers(cur, code, scope, day_int(today))
        if level is not None:
            items = [w for w in items if w["level"] == level]
        total = len(items)
        if not everything:
            items = items[(page - 1) * page_size : page * page_size]
        return {
            "scope": scope,
            "items": items,
            "page": page,
            "page_size": page_size,
            "total": total,
        }

    def assistance(
        self, code: str, *, date_from: datetime.date, date_to: datetime.date, scope: str
    ) -> dict[str, Any]:
        """困难职工帮扶和劳模工作统计: the registers and the money paid from them."""
        start, end = day_int(date_from), day_int(date_to)
        with self.store.reader() as cur:
            files = self._files(cur, code, scope, end)
            workers = self._workers(cur, code, scope, end)
            payouts = self._payouts(cur, code, scope, start, end)
            ledger = self._ledger(cur, code, scope, start, end)
            reviews = self._reviews_in(cur, [f["file_id"] for f in files], start, end)
        on_file = [f for f in files if f["status"] == "open"]
        by_category = Counter(f["category"] for f in on_file)
        by_cause = Counter(c for f in on_file for c in f["causes"])
        opened = sum(1 for f in files if start <= day_int(_day(f["opened_on"])) <= end)
        closed = sum(
            1 for f in files if f["closed_on"] and start <= day_int(_day(f["closed_on"])) <= end
        )
        per_programme: dict[str, dict[str, Any]] = {}
        for programme in PROGRAMME_ACCOUNTS:
            rows = [p for p in payouts if p["programme"] == programme]
            per_programme[programme] = {
                "programme": programme,
                "account_code": PROGRAMME_ACCOUNTS[programme],
                "payouts": sum(1 for p in rows if p["reverses"] is None),
                "reversals": sum(1 for p in rows if p["reverses"] is not None),
                "people": len({p["member_id"] for p in rows}),
                "amount": _yuan(sum(p["amount_fen"] for p in rows)),
            }
        by_file: dict[str, int] = defaultdict(int)
        for p in payouts:
            if p["programme"] == "hardship" and p["hardship_file_id"]:
                by_file[p["hardship_file_id"]] += p["amount_fen"]
        files_by_id = {f["file_id"]: f for f in files}
        households = [
            {
                "file_id": file_id,
                "member_id": files_by_id[file_id]["member_id"] if file_id in files_by_id else None,
                "name": files_by_id[file_id]["name"] if file_id in files_by_id else None,
                "organization_code": files_by_id[file_id]["organization_code"]
                if file_id in files_by_id
                else None,
                "category": files_by_id[file_id]["category"] if file_id in files_by_id else None,
                "amount": _yuan(fen),
            }
            for file_id, fen in sorted(by_file.items())
        ]
        hardship_fen = sum(by_file.values())
        active = [
            w
            for w in workers
            if w["first_awarded_year"] <= date_to.year
            and (w["revoked_on"] is None or _day(w["revoked_on"]) > date_to)
        ]
        worker_fen: dict[str, int] = defaultdict(int)
        level_of = {w["model_worker_id"]: w["level"] for w in workers}
        for p in payouts:
            if p["programme"] == "model_worker" and p["model_worker_id"]:
                worker_fen[level_of.get(p["model_worker_id"], "unknown")] += p["amount_fen"]
        by_level = [
            {
                "level": level,
                "level_name": LEVELS[level],
                "model_workers": sum(1 for w in active if w["level"] == level),
                "allowances": _yuan(worker_fen.get(level, 0)),
            }
            for level in LEVELS
        ]
        overdue = [
            {
                k: f[k]
                for k in (
                    "file_id",
                    "member_id",
                    "name",
                    "organization_code",
                    "category",
                    "opened_on",
                    "last_reviewed_on",
                    "review_due",
                )
            }
            for f in on_file
            if f["overdue"]
        ]
        paid_504 = sum(p["amount_fen"] for p in payouts if p["account_code"].startswith("504"))
        paid_505 = sum(p["amount_fen"] for p in payouts if p["account_code"].startswith("505"))
        return {
            "from": date_from.isoformat(),
            "to": date_to.isoformat(),
            "scope": scope,
            "hardship": {
                "households_on_file": len(on_file),
                "by_category": [
                    {"category": c, "category_name": CATEGORIES[c], "households": by_category[c]}
                    for c in CATEGORIES
                ],
                "by_cause": [
                    {"cause": c, "cause_name": CAUSES[c], "households": by_cause[c]} for c in CAUSES
                ],
                "opened": opened,
                "reviewed": reviews,
                "closed": closed,
                "households_paid": len(by_file),
                "paid": _yuan(hardship_fen),
                "paid_per_household": _yuan(hardship_fen // len(by_file)) if by_file else "0.00",
                "households": households,
                "overdue_reviews": overdue,
            },
            "model_workers": {
                "on_register": len(active),
                "revoked": sum(
                    1
                    for w in workers
                    if w["revoked_on"] is not None and date_from <= _day(w["revoked_on"]) <= date_to
                ),
                "by_level": by_level,
                "allowances": _yuan(sum(worker_fen.values())),
            },
            "programmes": list(per_programme.values()),
            "ledger_check": [
                *(
                    {
                        "account_code": account,
                        "paid_to_persons": _yuan(
                            sum(p["amount_fen"] for p in payouts if p["account_code"] == account)
                        ),
                        "ledger": _yuan(ledger.get(account, 0)),
                    }
                    for account in CHECKED_ACCOUNTS
                ),
                {
                    "account_code": "504",
                    "paid_to_persons": _yuan(paid_504),
                    "ledger": _yuan(ledger.get("504", 0)),
                },
                {
                    "account_code": "505",
                    "paid_to_persons": _yuan(paid_505),
                    "ledger": _yuan(ledger.get("505", 0)),
                },
            ],
        }

    def _payouts(
        self, cur: Any, code: str, scope: str, start: int, end: int
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"tree_day": end, "k": KNOWN_NOW_US, "s": start, "e": end}
        with_clause, where = org_filter(self.tables, "p.payer_code", scope, code, params)
        rows = self._select(
            cur,
            f"{with_clause} SELECT p.programme, p.account_code, p.member_id,"
            " p.hardship_file_id, p.model_worker_id, p.amount_fen, p.reverses"
            f" FROM {self._t('person_payouts')} p WHERE {where}"
            " AND p.paid_on >= :s AND p.paid_on <= :e",
            params,
        )
        keys = (
            "programme",
            "account_code",
            "member_id",
            "hardship_file_id",
            "model_worker_id",
            "amount_fen",
            "reverses",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def _ledger(self, cur: Any, code: str, scope: str, start: int, end: int) -> dict[str, int]:
        """Debits less credits on 504/505 and the register subaccounts in the period, as the
        journal has them (year-end closing vouchers left out, as 02表 leaves them)."""
        params: dict[str, Any] = {"tree_day": end, "k": KNOWN_NOW_US, "s": start, "e": end}
        with_clause, where = org_filter(self.tables, "l.organization_code", scope, code, params)
        rows = self._select(
            cur,
            f"{with_clause} SELECT l.account_code, SUM(l.debit_fen - l.credit_fen)"
            f" FROM {self._t('ledger_lines')} l WHERE {where}"
            " AND l.effective_on >= :s AND l.effective_on <= :e"
            " AND substr(l.account_code, 1, 3) IN ('504', '505')"
            " AND l.kind <> 'year_end' GROUP BY l.account_code",
            params,
        )
        sums: dict[str, int] = defaultdict(int)
        for account, fen in rows:
            sums[account] += int(fen)
            if len(account) > 3:
                sums[account[:3]] += int(fen)
        return dict(sums)

    def _reviews_in(self, cur: Any, file_ids: list[str], start: int, end: int) -> int:
        count = 0
        for i in range(0, len(file_ids), 500):
            chunk = file_ids[i : i + 500]
            marks: dict[str, Any] = {f"f{n}": v for n, v in enumerate(chunk)}
            marks.update(s=start, e=end)
            rows = self._select(
                cur,
                f"SELECT COUNT(*) FROM {self._t('hardship_states')}"
                f" WHERE file_id IN ({', '.join(':f' + str(n) for n in range(len(chunk)))})"
                " AND kind = 'reviewed' AND valid_from >= :s AND valid_from <= :e",
                marks,
            )
            count += int(rows[0][0])
        return count


def _day(text: str | None) -> datetime.date:
    assert text is not None
    return datetime.date.fromisoformat(text)
