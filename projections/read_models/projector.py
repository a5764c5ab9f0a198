"""The projector: applies events from the notification log to one set of read-model tables.

Exactly once: a batch of events and the position it reaches are written in one transaction,
and the position row is locked first (SELECT ... FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on
SQLite), so that concurrent catch-ups serialise and a crash mid-batch leaves the last committed
position behind: the batch is then applied again, whole, by whoever comes next.

Within a batch, rows are built in memory and written at the end: updates of rows stored by
earlier batches (keyed exactly), then inserts of new rows, each as one executemany.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from domain.identity import IdNumber
from domain.members import REMOVAL, RETAIN, TRANSFER_IN, TRANSFER_OUT, WITHDRAWAL
from domain.organizations import Organization
from domain.vouchers import Book
from projections.read_models import ledger_sums, registers, roll_counts, subtree_sums
from projections.read_models.event_reader import EventReader, ReadEvent
from projections.read_models.rows import DAY_ZERO, day_int, micros
from projections.read_models.schema import TABLES_BY_NAME, TableSet
from storage import gc_pause
from storage.database import Store, one_of
from storage.event_store import EventLog
from storage.pii_cipher import PiiCipher

# Events per catch-up transaction: bigger batches amortise the per-batch lookups and commit;
# on SQLite the batch holds the write lock (about 0.1-0.2 s at this size).
BATCH_EVENTS = 5_000
# A long catch-up on PostgreSQL, where a batch locks no writer out: fewer, larger upserts of
# the sums and fewer lookups per event. Measured on a county store (216,154 events, three pairs
# in turn): 18,457-19,159 events/s against 15,907-16,290 at 5,000, peak resident memory 243 MiB
# (40,000: no faster, 415 MiB).
LONG_RUN_BATCH_EVENTS = 20_000
# A catch-up of at least this many events reads ahead in a thread (Projector._ahead) and
# pauses automatic garbage collection (gc_pause).
LONG_CATCH_UP_EVENTS = 2 * BATCH_EVENTS
_PREFETCH_CHUNK = 500
_PREFETCH_CHUNK_PG = 5_000
JOIN_CODE = 1

KIND_LABELS = {
    "dues": "会费",
    "levy": "拨缴经费",
    "founding_reserve": "建会筹备金",
    "founding_reserve_release": "建会筹备金转拨",
    "remittance": "经费上解/回拨",
    "subsidy": "补助",
    "expense": "支出",
    "reversal": "红字冲销",
    "year_end": "年终结账",
}
PROGRAMME_LABELS = {
    "hardship": "困难职工帮扶",
    "school": "金秋助学",
    "model_worker": "劳模补助",
    "childcare": "托育补助",
    "condolence": "慰问",
    "general": "一般补助",
}
CHANNEL_LABELS = {"employer": "单位缴纳", "tax": "税务代收"}


# Row dicts to key tuples and to column tuples: built once, used for every row.
_KEY_OF = {name: itemgetter(*t.key) for name, t in TABLES_BY_NAME.items()}
_VALUES_OF = {name: itemgetter(*t.column_names) for name, t in TABLES_BY_NAME.items()}


class ProjectionError(RuntimeError):
    """An event contradicts the read models (a defect, never a user's error)."""


@dataclass
class Progress:
    position: int
    recorded_at_us: int
    events: int
    done: bool


def describe(kind: str, details: dict[str, Any], reverses: str | None) -> str:
    """摘要: the journal's description of a voucher, in the words auditors use."""
    period = details.get("period", "")
    if kind == "dues":
        return f"收{period}会费"
    if kind == "levy":
        channel = CHANNEL_LABELS.get(details.get("channel", ""), "")
        return f"收{period}拨缴经费（{channel}，缴费单位{details.get('employer_code', '')}）"
    if kind == "founding_reserve":
        return f"收{period}建会筹备金（缴费单位{details.get('employer_code', '')}）"
    if kind == "founding_reserve_release":
        return f"{period}建会筹备金转拨（{details.get('base_organization_code', '')}建会）"
    if kind == "remittance":
        verb = "上解" if details.get("kind") == "upward" else "回拨"
        return f"{verb}{period}经费"
    if kind == "subsidy":
        label = PROGRAMME_LABELS.get(details.get("programme", ""), "补助")
        return f"{label}（批准文号{details.get('approval_ref', '')}）"
    if kind == "expense":
        return str(details.get("description", ""))
    if kind == "reversal":
        return f"红字冲销{reverses or ''}：{details.get('reason', '')}"
    return KIND_LABELS.get(kind, kind)


class Batch:
    """The rows one batch of events produces, built in memory and then written."""

    def __init__(
        self,
        store: Store,
        cur: Any,
        tables: TableSet,
        cipher: PiiCipher,
        org_codes: dict[str, str],
        *,
        keep_sums: bool = True,
    ) -> None:
        self.store = store
        self.cur = cur
        self.tables = tables
        self.cipher = cipher
        self.org_codes = org_codes  # organisation aggregate id -> code (a cache across batches)
        self.inserts: dict[str, dict[tuple, dict[str, Any]]] = {t: {} for t in TABLES_BY_NAME}
        # Rows only ever inserted, never read back or updated in a batch, as tuples in column
        # order (the audit index: more than one row per event, where a dict each cost more
        # than their insert).
        self.plain_inserts: dict[str, list[tuple]] = {"audit_index": [], "roll_counts": []}
        self.updates: dict[tuple[str, tuple[str, ...]], list[tuple]] = defaultdict(list)
        # Per member: the open roll span and the current details, stored or new in this batch.
        self.open_spans: dict[str, dict[str, Any] | None] = {}
        self.details: dict[str, dict[str, Any] | None] = {}
        # The changes to the rolls' counts (roll_counts.py), the recorded time of each event
        # that made one, and per member the spans opened or closed in this batch.
        self.roll_deltas: roll_counts.Deltas = {}
        self.roll_at: dict[int, int] = {}
        self.batch_spans: dict[str, dict[int, dict[str, Any]]] = {}
        self.position = 0
        self.at_us = 0
        # ledger_sums rows: the batch's lines summed per key, added to the stored rows (None:
        # a bulk build, which sums every line once at its end: ledger_sums.fill).
        self.sums: ledger_sums.Sums | None = {} if keep_sums else None
        # The batch's changes to the tree, for subtree_sums: (code, parent) of each union
        # founded, in order, and whether any union moved.
        self.founded: list[tuple[str, str | None]] = []
        self.moved = False
        # The lines of the year-end close and of its reversals per day (subtree_sums.py).
        self.closing: ledger_sums.Sums = {}

    # --- generic row operations ------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """A new row (it has no "_stored" mark: rows read back from the tables have)."""
        rows = self.inserts[table]
        key = _KEY_OF[table](row)
        if key in rows:
            raise ProjectionError(f"{table}: row {key} produced twice in one batch")
        rows[key] = row
        return row

    def update(self, table: str, row: dict[str, Any], **changes: Any) -> None:
        """Changes a row: in memory if it is new in this batch, else by an UPDATE on its key."""
        row.update(changes)
        if row.get("_stored"):
            key_columns = TABLES_BY_NAME[table].key
            columns = tuple(sorted(changes))
            params = tuple(changes[c] for c in columns) + tuple(row[c] for c in key_columns)
            self.updates[(table, columns)].append(params)

    def flush(self) -> None:
        self.plain_inserts["roll_counts"] = roll_counts.rows(self.roll_deltas, self.roll_at)
        for (table, columns), rows in self.updates.items():
            key_columns = TABLES_BY_NAME[table].key
            sets = ", ".join(f"{c} = ?" for c in columns)
            where = " AND ".join(f"{c} = ?" for c in key_columns)
            self.store.executemany(
                self.cur, f"UPDATE {self.tables.table(table)} SET {sets} WHERE {where}", rows
            )
        pending = [
            (t, map(_VALUES_OF[t], rows.values())) for t, rows in self.inserts.items() if rows
        ]
        pending += [(t, rows) for t, rows in self.plain_inserts.items() if rows]
        for table, values in pending:
            names = TABLES_BY_NAME[table].column_names
            if self.store.is_sqlite:
                marks = ", ".join("?" for _ in names)
                self.cur.executemany(
                    f"INSERT INTO {self.tables.table(table)} ({', '.join(names)}) VALUES ({marks})",
                    values,
                )
            else:
                # COPY: one stream per table instead of a round of messages per row; binary,
                # so that encrypted fields go as their bytes, not as hex text.
                with self.cur.copy(
                    f"COPY {self.tables.table(table)} ({', '.join(names)}) FROM STDIN"
                    " (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(TABLES_BY_NAME[table].postgres_types)
                    for row in values:
                        copy.write_row(row)
        if self.sums is not None:
            ledger_sums.write(self.store, self.cur, self.tables, self.sums)
        table = self.tables.table("roll_totals")
        roll_counts.write_totals(self.store, self.cur, table, self.roll_deltas)
        if self.sums is not None:
            subtree_sums.write(
                self.store,
                self.cur,
                self.tables,
                self.sums,
                self.closing,
                self.roll_deltas,
                self.founded,
                self.moved,
            )

    def voucher_row(self, voucher_id: str) -> dict[str, Any] | None:
        """A voucher posted in this batch or before (None: never posted)."""
        row = self.inserts["vouchers"].get(voucher_id)
        if row is None:
            rows = self._select("vouchers", "voucher_id = ?", (voucher_id,))
            row = rows[0] if rows else None
        return row

    def _select(self, table: str, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        names = TABLES_BY_NAME[table].column_names
        self.cur.execute(
            self.store.sql(
                f"SELECT {', '.join(names)} FROM {self.tables.table(table)} WHERE {where}"
            ),
            tuple(params),
        )
        return [dict(zip(names, r, strict=True), _stored=True) for r in self.cur.fetchall()]

    # --- prefetch ------------------------------------------------------------------------------

    def prefetch_members(self, member_ids: set[str]) -> None:
        """Loads the open span and current details of every member the batch touches."""
        wanted = sorted(m for m in member_ids if m not in self.details)
        for m in wanted:
            self.open_spans[m] = None
            self.details[m] = None
        for row in self.select_in("roll_spans", "member_id", wanted, "closed_position IS NULL"):
            self.open_spans[row["member_id"]] = row
        for row in self.select_in(
            "member_details", "member_id", wanted, "superseded_position IS NULL"
        ):
            self.details[row["member_id"]] = row

    def select_in(
        self, table: str, column: str, keys: Sequence[str], where: str = "TRUE"
    ) -> Iterator[dict[str, Any]]:
        """The stored rows of `table` whose `column` is one of `keys` (and that match `where`),
        read in chunks: one query per chunk instead of one per key."""
        sqlite = self.store.is_sqlite
        size = _PREFETCH_CHUNK if sqlite else _PREFETCH_CHUNK_PG
        for i in range(0, len(keys), size):
            chunk = keys[i : i + size]
            key_in, params = one_of(column, chunk, "text", sqlite=sqlite)
            yield from self._select(table, f"{where} AND {key_in}", params)

    def org_code(self, aggregate_id: str) -> str:
        code = self.org_codes.get(aggregate_id)
        if code is None:
            self.cur.execute(
                self.store.sql(
                    f"SELECT code FROM {self.tables.table('organizations')} WHERE aggregate_id = ?"
                ),
                (aggregate_id,),
            )
            row = self.cur.fetchone()
            if row is None:
                raise ProjectionError(f"an event names unknown organisation {aggregate_id}")
            code = self.org_codes[aggregate_id] = row[0]
        return code

    def organization_row(self, code: str) -> dict[str, Any]:
        if code in self.inserts["organizations"]:
            return self.inserts["organizations"][code]
        rows = self._select("organizations", "code = ?", (code,))
        if not rows:
            raise ProjectionError(f"organisation {code} is not in the read models")
        return rows[0]

    # --- roll spans and details ------------------------------------------------------------

    def open_span(
        self,
        member_id: str,
        *,
        organization_code: str,
        status: str,
        sex: str,
        joined_on: int,
        valid_from: int,
        transfer_to: str | None = None,
        transfer_reason: int | None = None,
    ) -> None:
        if self.open_spans.get(member_id) is not None:
            raise ProjectionError(f"member {member_id} already has an open roll span")
        span = self.open_spans[member_id] = self.insert(
            "roll_spans",
            {
                "member_id": member_id,
                "opened_position": self.position,
                "organization_code": organization_code,
                "status": status,
                "sex": sex,
                "joined_on": joined_on,
                "valid_from": valid_from,
                "valid_to": None,
                "opened_at_us": self.at_us,
                "closed_position": None,
                "closed_at_us": None,
                "transfer_to": transfer_to,
                "transfer_reason": transfer_reason,
            },
        )
        self._count(span, span["valid_from"], self.details.get(member_id), +1)

    def _count(
        self, span: dict[str, Any], day: int, details: dict[str, Any] | None, sign: int
    ) -> None:
        """A change to the counts of the span's union from day on (roll_counts.py)."""
        weights = roll_counts.span_weights(span, details)
        self._count_weights(span, day, weights, sign)

    def _count_weights(self, span: dict[str, Any], day: int, weights: list[int], sign: int) -> None:
        self.roll_at[self.position] = self.at_us
        key = (self.position, span["organization_code"], day)
        roll_counts.add(self.roll_deltas, key, weights, sign)
        self.batch_spans.setdefault(span["member_id"], {})[span["opened_position"]] = span

    def member_spans(self, member_id: str) -> list[dict[str, Any]]:
        """Every span of a member, as this batch has left them."""
        spans = {
            row["opened_position"]: row
            for row in self._select("roll_spans", "member_id = ?", (member_id,))
        }
        spans.update(self.batch_spans.get(member_id, {}))
        return list(spans.values())

    def close_span(self, member_id: str, valid_to: int | None = None) -> dict[str, Any]:
        span = self.open_spans.get(member_id)
        if span is None:
            raise ProjectionError(f"member {member_id} has no open roll span")
        self.open_spans[member_id] = None
        self.update(
            "roll_spans",
            span,
            valid_to=span["valid_from"] if valid_to is None else valid_to,
            closed_position=self.position,
            closed_at_us=self.at_us,
        )
        self._count(span, roll_counts.end_day(span), self.details.get(member_id), -1)
        return span

    def new_details(self, member_id: str, **fields: Any) -> None:
        current = self.details.get(member_id)
        row = {k: v for k, v in (current or {}).items() if k != "_stored"}
        if current is not None:
            self.update(
                "member_details",
                current,
                superseded_position=self.position,
                superseded_at_us=self.at_us,
            )
        row.update(fields)
        row.update(
            member_id=member_id,
            position=self.position,
            recorded_at_us=self.at_us,
            superseded_position=None,
            superseded_at_us=None,
        )
        self.details[member_id] = self.insert("member_details", row)
        if current is not None:
            self._recount_flags(member_id, current, row)

    def _recount_flags(self, member_id: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """New flags change the counts of every span of the member (roll_counts.py)."""
        weights = [
            0,
            0,
            0,
            0,
            int(after["migrant_worker"]) - int(before["migrant_worker"]),
            int(after["new_employment_form"]) - int(before["new_employment_form"]),
        ]
        if not any(weights):
            return
        for span in self.member_spans(member_id):
            self._count_weights(span, span["valid_from"], weights, +1)
            if span["closed_position"] is not None:
                self._count_weights(span, roll_counts.end_day(span), weights, -1)

    def encrypt(self, member_id: str, field: str, value: str | None) -> bytes | None:
        return self.cipher.encrypt(value, field=field, origin=f"{member_id}|{self.position}")

    def change(
        self,
        line_no: int,
        member_id: str,
        organization_code: str,
        change_code: int,
        reason_code: int | None,
        effective_on: int,
        *,
        reinstated: bool = False,
    ) -> None:
        self.insert(
            "roll_changes",
            {
                "position": self.position,
                "line_no": line_no,
                "member_id": member_id,
                "organization_code": organization_code,
                "change_code": change_code,
                "reason_code": reason_code,
                "effective_on": effective_on,
                "recorded_at_us": self.at_us,
                "reinstated": int(reinstated),
            },
        )


# --- event handlers: one per topic, each the whole effect of its event on the read models ----


def _org_founded(b: Batch, e: Any) -> None:
    b.org_codes[str(e.originator_id)] = e.code
    b.founded.append((e.code, e.parent_code))
    b.insert(
        "organizations",
        {
            "code": e.code,
            "aggregate_id": str(e.originator_id),
            "name": e.name,
            "level": e.level,
            "region_code": e.region_code,
            "employer_code": e.employer_code,
            "founded_on": day_int(e.founded_on),
            "status": "active",
            "dissolved_on": None,
            "dissolved_at_us": None,
            "parent_code": e.parent_code,
            "position": b.position,
            "recorded_at_us": b.at_us,
        },
    )
    b.insert(
        "org_parents",
        {
            "code": e.code,
            "valid_from": DAY_ZERO,
            "position": b.position,
            "recorded_at_us": b.at_us,
            "parent_code": e.parent_code,
        },
    )
    if e.employee_count is not None:
        b.insert(
            "org_employees",
            {
                "code": e.code,
                "valid_from": DAY_ZERO,
                "position": b.position,
                "recorded_at_us": b.at_us,
                "employee_count": e.employee_count,
            },
        )


def _org_changed(b: Batch, e: Any) -> None:
    code = b.org_code(str(e.originator_id))
    valid_from = day_int(e.effective_on)
    changes: dict[str, Any] = {}
    if e.name is not None:
        changes["name"] = e.name
    if e.parent_code is not None:
        changes["parent_code"] = e.parent_code
        b.moved = True
        b.insert(
            "org_parents",
            {
                "code": code,
                "valid_from": valid_from,
                "position": b.position,
                "recorded_at_us": b.at_us,
                "parent_code": e.parent_code,
            },
        )
    if e.employee_count is not None:
        b.insert(
            "org_employees",
            {
                "code": code,
                "valid_from": valid_from,
                "position": b.position,
                "recorded_at_us": b.at_us,
                "employee_count": e.employee_count,
            },
        )
    if changes:
        b.update("organizations", b.organization_row(code), **changes)


def _org_dissolved(b: Batch, e: Any) -> None:
    code = b.org_code(str(e.originator_id))
    b.update(
        "organizations",
        b.organization_row(code),
        status="dissolved",
        dissolved_on=day_int(e.dissolved_on),
        dissolved_at_us=b.at_us,
    )


def _member_joined(b: Batch, e: Any) -> None:
    member_id = str(e.originator_id)
    identity = IdNumber(e.id_number)
    b.new_details(
        member_id,
        id_number_hash=b.cipher.lookup_hash(e.id_number),
        sex=identity.sex,
        name_enc=b.encrypt(member_id, "name", e.name),
        id_number_enc=b.encrypt(member_id, "id_number", e.id_number),
        mobile_enc=b.encrypt(member_id, "mobile", e.mobile),
        migrant_worker=int(e.migrant_worker),
        new_employment_form=int(e.new_employment_form),
    )
    _start_membership(b, member_id, identity.sex, e.organization_code, e.joined_on)


def _member_rejoined(b: Batch, e: Any) -> None:
    member_id = str(e.originator_id)
    current = b.details.get(member_id)
    if current is None:
        raise ProjectionError(f"member {member_id} rejoins but was never recorded")
    b.new_details(
        member_id,
        name_enc=b.encrypt(member_id, "name", e.name),
        mobile_enc=b.encrypt(member_id, "mobile", e.mobile),
        migrant_worker=int(e.migrant_worker),
        new_employment_form=int(e.new_employment_form),
    )
    _start_membership(b, member_id, current["sex"], e.organization_code, e.joined_on)


def _start_membership(b: Batch, member_id: str, sex: str, org: str, joined_on: Any) -> None:
    day = day_int(joined_on)
    b.open_span(
        member_id, organization_code=org, status="active", sex=sex, joined_on=day, valid_from=day
    )
    b.change(0, member_id, org, JOIN_CODE, None, day)


def _continue(
    b: Batch, member_id: str, span: dict[str, Any], status: str, valid_from: int, **extra: Any
) -> None:
    b.open_span(
        member_id,
        organization_code=extra.pop("organization_code", span["organization_code"]),
        status=status,
        sex=span["sex"],
        joined_on=span["joined_on"],
        valid_from=valid_from,
        **extra,
    )


def _transfer_started(b: Batch, e: Any) -> None:
    member_id, day = str(e.originator_id), day_int(e.effective_on)
    span = b.close_span(member_id, day)
    _continue(
        b,
        member_id,
        span,
        "transfer_pending",
        day,
        transfer_to=e.to_organization_code,
        transfer_reason=e.reason_code,
    )


def _transfer_accepted(b: Batch, e: Any) -> None:
    member_id, day = str(e.originator_id), day_int(e.effective_on)
    span = b.close_span(member_id, day)
    if span["transfer_to"] is None:
        raise ProjectionError(f"member {member_id}: a transfer accepted but none pending")
    _continue(b, member_id, span, "active", day, organization_code=span["transfer_to"])
    registers.files_follow(b, member_id, span["transfer_to"])
    reason = span["transfer_reason"]
    b.change(0, member_id, span["organization_code"], TRANSFER_OUT, reason, day)
    b.change(1, member_id, span["transfer_to"], TRANSFER_IN, reason, day)


def _transfer_cancelled(b: Batch, e: Any) -> None:
    # The transfer never happened: as now known, the member stayed active throughout.
    member_id = str(e.originator_id)
    span = b.close_span(member_id)
    _continue(b, member_id, span, "active", span["valid_from"])


def _retained(b: Batch, e: Any) -> None:
    member_id, day = str(e.originator_id), day_int(e.effective_on)
    span = b.close_span(member_id, day)
    _continue(b, member_id, span, "retained", day)
    b.change(0, member_id, span["organization_code"], RETAIN, e.reason_code, day)


def _reinstated(b: Batch, e: Any) -> None:
    member_id, day = str(e.originator_id), day_int(e.effective_on)
    span = b.close_span(member_id, day)
    _continue(b, member_id, span, "active", day)
    # 恢复会籍: back on the working roll, in the changes report as a change of its own.
    b.change(0, member_id, span["organization_code"], JOIN_CODE, None, day, reinstated=True)


def _exited(b: Batch, e: Any) -> None:
    member_id, day = str(e.originator_id), day_int(e.effective_on)
    if e.change_code not in (REMOVAL, WITHDRAWAL):
        raise ProjectionError(f"member {member_id}: exit with change code {e.change_code}")
    span = b.close_span(member_id, day)
    b.change(0, member_id, span["organization_code"], e.change_code, e.reason_code, day)


def _corrected(b: Batch, e: Any) -> None:
    member_id = str(e.originator_id)
    if b.details.get(member_id) is None:
        raise ProjectionError(f"member {member_id} corrected but never recorded")
    fields: dict[str, Any] = {}
    for field, value in e.changes.items():
        if field in ("name", "mobile"):
            fields[f"{field}_enc"] = b.encrypt(member_id, field, value)
        elif field in ("migrant_worker", "new_employment_form"):
            fields[field] = int(value)
    b.new_details(member_id, **fields)


def _voucher_posted(b: Batch, e: Any) -> None:
    voucher_id = str(e.originator_id)
    details = e.details or {}
    day = day_int(e.effective_on)
    b.insert(
        "vouchers",
        {
            "voucher_id": voucher_id,
            "position": b.position,
            "recorded_at_us": b.at_us,
            "kind": e.kind,
            "effective_on": day,
            "period": details.get("period"),
            "description": describe(e.kind, details, e.reverses),
            "reverses": e.reverses,
            "reversed_by": None,
            "reversed_position": None,
            "reversed_at_us": None,
        },
    )
    bank_fen: dict[str, int] = defaultdict(int)
    closing = b.sums is not None and (
        e.kind == "year_end"
        or (e.kind == "reversal" and (b.voucher_row(e.reverses) or {}).get("kind") == "year_end")
    )
    numbers = details.get("numbers") or {}
    postings = e.postings
    if e.kind == "reversal" and all(p.debit_fen >= 0 and p.credit_fen >= 0 for p in postings):
        # A reversal stored before red ink (debit and credit swapped, positive amounts) is
        # shown as the red-ink lines with the same effect (domain/vouchers.py as_red_ink).
        postings = [p._replace(debit_fen=-p.credit_fen, credit_fen=-p.debit_fen) for p in postings]
    for line_no, p in enumerate(postings):
        b.insert(
            "ledger_lines",
            {
                "position": b.position,
                "line_no": line_no,
                "voucher_id": voucher_id,
                "organization_code": p.organization_code,
                "account_code": p.account_code,
                "debit_fen": p.debit_fen,
                "credit_fen": p.credit_fen,
                "earmarked": int(p.earmarked),
                "counterparty": p.counterparty,
                "effective_on": day,
                "recorded_at_us": b.at_us,
                "kind": e.kind,
                "number": numbers.get(p.organization_code),
            },
        )
        if b.sums is not None:
            ledger_sums.add(
                b.sums,
                p.organization_code,
                p.account_code,
                int(p.earmarked),
                day,
                p.debit_fen,
                p.credit_fen,
                b.at_us,
            )
            if closing:
                key = (p.organization_code, subtree_sums.CLOSING, day, p.account_code)
                ledger_sums.merge(
                    b.closing, (*key, int(p.earmarked)), p.debit_fen, p.credit_fen, b.at_us, b.at_us
                )
        if p.account_code == "102":
            bank_fen[p.organization_code] += p.debit_fen
    registers.payout_posted(b, e, voucher_id, day)
    if e.kind in ("levy", "founding_reserve"):
        receiver = next(code for code, fen in bank_fen.items() if fen > 0)
        b.insert(
            "levy_receipts",
            {
                "voucher_id": voucher_id,
                "position": b.position,
                "recorded_at_us": b.at_us,
                "kind": e.kind,
                "receiving_organization_code": receiver,
                "base_organization_code": details.get("base_organization_code"),
                "employer_code": details.get("employer_code"),
                "period": details.get("period"),
                "channel": details.get("channel"),
                "amount_fen": bank_fen[receiver],
                "received_on": day,
            },
        )


def _voucher_reversed(b: Batch, e: Any) -> None:
    voucher_id = str(e.originator_id)
    row = b.voucher_row(voucher_id)
    if row is None:
        raise ProjectionError(f"voucher {voucher_id} reversed but never posted")
    b.update(
        "vouchers",
        row,
        reversed_by=e.reversal_id,
        reversed_position=b.position,
        reversed_at_us=b.at_us,
    )


def _policy_adopted(b: Batch, e: Any) -> None:
    b.insert(
        "levy_policies",
        {
            "region_prefix": e.region_prefix,
            "effective_from": day_int(e.effective_from),
            "position": b.position,
            "recorded_at_us": b.at_us,
            "shares": json.dumps(e.shares, sort_keys=True),
        },
    )


HANDLERS: dict[str, Callable[[Batch, Any], None]] = {
    "ledger:Organisation.Founded": _org_founded,
    "ledger:Organisation.Changed": _org_changed,
    "ledger:Organisation.Dissolved": _org_dissolved,
    "ledger:Member.Joined": _member_joined,
    "ledger:Member.Rejoined": _member_rejoined,
    "ledger:Member.TransferStarted": _transfer_started,
    "ledger:Member.TransferAccepted": _transfer_accepted,
    "ledger:Member.TransferCancelled": _transfer_cancelled,
    "ledger:Member.Retained": _retained,
    "ledger:Member.Reinstated": _reinstated,
    "ledger:Member.Exited": _exited,
    "ledger:Member.Corrected": _corrected,
    "ledger:Voucher.Posted": _voucher_posted,
    "ledger:Voucher.Reversed": _voucher_reversed,
    "ledger:LevyPolicies.Adopted": _policy_adopted,
    **registers.HANDLERS,
}
_MEMBER_PREFIX = "ledger:Member."
_JOINED = "ledger:Member.Joined"
_FOUNDED = "ledger:Organisation.Founded"
# Topics whose data names no union (member ids, dates, a period): the audit index lists them
# under the union whose stream they are in, so their payloads are not even fetched. They are
# about two fifths of a typical log (a MemberAdmitted per join). Kept honest by
# tests/projections/test_audit_events.py, which reads every one of a varied history.
UNREAD_TOPICS = frozenset(
    {
        "ledger:Organisation.MemberAdmitted",
        "ledger:Organisation.MembersAdmitted",
        "ledger:Organisation.MemberReleased",
        "ledger:Book.MonthClosed",
    }
)


class UnionStreams:
    """Stream id -> union code for every union's own streams (its record and its book), for the
    audit index. A pure function of the codes founded so far, so one map serves every table set;
    it learns codes from the Founded events the projector applies and, when another process
    moved a set on in between, from that set's organisations table. Keyed by both texts a
    stream id is read as (SQLite's hex, PostgreSQL's hyphenated), so no event's id needs
    converting."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self._known_through: dict[str, int] = {}  # table set prefix -> position

    def add(self, code: str) -> None:
        for stream in (Organization.id_for(code), Book.id_for(code)):
            self.codes[stream.hex] = code
            self.codes[str(stream)] = code

    def catch_up(self, store: Store, cur: Any, tables: TableSet, position: int) -> None:
        known = self._known_through.get(tables.prefix, -1)
        if position > known:
            cur.execute(
                store.sql(f"SELECT code FROM {tables.table('organizations')} WHERE position > ?"),
                (known,),
            )
            for (code,) in cur.fetchall():
                self.add(code)

    def applied(self, tables: TableSet, position: int) -> None:
        self._known_through[tables.prefix] = position


def index_for_audit(b: Batch, streams: UnionStreams, items: list[ReadEvent]) -> None:
    """审计索引 rows: each event under every union whose own stream it is in or whose code its
    data names. (code, position) is unique by construction (the table's key proves it)."""
    rows = b.plain_inserts["audit_index"]
    own_of = streams.codes.get
    for n, event, codes in items:
        if event is not None and n.topic == _FOUNDED:
            streams.add(event.code)
        own = own_of(n.originator_id)
        position = n.id
        rows.extend((code, position) for code in codes)
        if own is not None and own not in codes:
            rows.append((own, position))


class Projector:
    """Applies the notification log to a TableSet, batch by batch."""

    def __init__(self, ledger: EventLog, store: Store, cipher: PiiCipher) -> None:
        self.ledger = ledger
        self.store = store
        self.cipher = cipher
        self.reader = EventReader(ledger, store, HANDLERS, unread=UNREAD_TOPICS)
        # Organisation aggregate id -> code: a pure function of the code, so one cache serves
        # every table set and survives rolled-back batches.
        self._org_codes: dict[str, str] = {}
        self._union_streams = UnionStreams()

    def read_position(self, cur: Any, tables: TableSet, *, lock: bool) -> tuple[int, int]:
        sql = f"SELECT position, recorded_at_us FROM {tables.table('position')} WHERE name = ?"
        if lock and not self.store.is_sqlite:
            sql += " FOR UPDATE"
        cur.execute(self.store.sql(sql), ("position",))
        row = cur.fetchone()
        if row is None:
            raise ProjectionError(f"{tables.table('position')} has no position row")
        return int(row[0]), int(row[1])

    def apply_next(
        self,
        cur: Any,
        tables: TableSet,
        *,
        limit: int,
        stop: int | None = None,
        until_us: int | None = None,
        lock: bool = True,
        keep_sums: bool = True,
    ) -> Progress:
        """Applies up to `limit` events after the stored position, inside the caller's
        transaction, and advances the position. until_us: stop before the first event
        recorded later (a rebuild "as known at" a moment). keep_sums False: ledger_sums is
        left alone, for a build that fills it from the lines at its end."""
        position, recorded_at_us = self.read_position(cur, tables, lock=lock)
        if stop is not None and position >= stop:
            return Progress(position, recorded_at_us, 0, True)
        items = self.reader.read_chunk(cur, after=position, limit=limit, stop=stop).items
        if not items:
            return Progress(position, recorded_at_us, 0, True)
        self._union_streams.catch_up(self.store, cur, tables, position)
        batch = Batch(self.store, cur, tables, self.cipher, self._org_codes, keep_sums=keep_sums)
        decoded = []
        member_ids: set[str] = set()  # members whose stored rows the batch reads
        joined: set[str] = set()  # members who join in this batch
        register_keys: dict[tuple[str, str], set[str]] = {}
        done = False
        consumed = 0
        for n, event, _codes in items:
            if event is None:  # a topic no read model uses
                position = n.id
                consumed += 1
                continue
            # A running maximum: an event counts as recorded no earlier than any before it,
            # so "known at" a moment always selects a prefix of the log.
            at_us = max(recorded_at_us, micros(event.timestamp))
            if until_us is not None and at_us > until_us:
                done = True
                break
            recorded_at_us = at_us
            position = n.id
            consumed += 1
            decoded.append((n.id, at_us, HANDLERS[n.topic], event))
            if n.topic == _JOINED:
                # A member's first event: nothing of it is stored yet, and the batch keeps
                # what its later events here need.
                joined.add(event.originator_id)
            elif n.topic.startswith(_MEMBER_PREFIX) and event.originator_id not in joined:
                member_ids.add(event.originator_id)
            lookup = registers.PREFETCH.get(n.topic)
            if lookup is not None:
                register_keys.setdefault(lookup, set()).add(str(event.originator_id))
        batch.prefetch_members(member_ids)
        registers.prefetch(batch, register_keys)
        for event_position, at_us, handler, event in decoded:
            batch.position, batch.at_us = event_position, at_us
            handler(batch, event)
        index_for_audit(batch, self._union_streams, items[:consumed])
        batch.flush()
        cur.execute(
            self.store.sql(
                f"UPDATE {tables.table('position')} SET position = ?, "
                "recorded_at_us = ? WHERE name = ?"
            ),
            (position, recorded_at_us, "position"),
        )
        self._union_streams.applied(tables, position)
        return Progress(position, recorded_at_us, consumed, done)

    def _ahead(
        self, position: int, long_run: bool, batch_events: int, stop: int | None
    ) -> AbstractContextManager[None]:
        """A long catch-up on PostgreSQL reads and decodes the next batch in a thread while
        this one is written (as a build does: rebuild.py), so that decoding overlaps the
        waits on the server. The batch is still applied in the transaction that locks and
        advances the position: a chunk read ahead is used only if it starts at the position
        that transaction reads and is full (EventReader.reading_ahead), else it is read again
        there. Short catch-ups (the server's, every half second) and SQLite (where the thread
        only takes the GIL from the writer) read in the transaction alone."""
        if self.store.is_sqlite or not long_run:
            return nullcontext()
        return self.reader.reading_ahead(after=position, limit=batch_events, stop=stop)

    def catch_up(
        self,
        tables: TableSet,
        *,
        max_events: int | None = None,
        stop: int | None = None,
        until_us: int | None = None,
        batch_events: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Applies pending events, one transaction per batch; returns the position reached.
        batch_events None: BATCH_EVENTS, or LONG_RUN_BATCH_EVENTS in a long run on PostgreSQL."""
        with self.store.reader() as cur:
            position = self.read_position(cur, tables, lock=False)[0]
        # Nothing new: no write lock taken (readers call this before every query).
        head = self.ledger.recorder.max_notification_id() or 0
        if head <= position:
            return position
        applied = 0
        long_run = head - position >= LONG_CATCH_UP_EVENTS
        if batch_events is None:
            bulk = long_run and not self.store.is_sqlite
            batch_events = LONG_RUN_BATCH_EVENTS if bulk else BATCH_EVENTS
        with (
            self.store.writer() as conn,
            self._ahead(position, long_run, batch_events, stop),
            gc_pause.paused(long_run) as between_batches,
        ):
            while True:
                limit = batch_events
                if max_events is not None:
                    limit = min(limit, max_events - applied)
                    if limit <= 0:
                        break
                with self.store.transaction(conn) as cur:
                    progress = self.apply_next(
                        cur, tables, limit=limit, stop=stop, until_us=until_us
                    )
                between_batches()
                if on_batch is not None:
                    on_batch(progress.position)
                applied += progress.events
                if progress.done:
                    return progress.position
            with self.store.transaction(conn) as cur:
                return self.read_position(cur, tables, lock=False)[0]
