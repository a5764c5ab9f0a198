"""The read-model tables (读模型), declared once for both databases.

A TableSet is one complete set of tables under a prefix: `rm_` for the live set that queries
read, `rm_shadow_` for a rebuild in progress. Dates are stored as integers YYYYMMDD, recorded
times as integer microseconds since the epoch (UTC), amounts as integer fen: the same in both
databases, compared exactly, ordered without collations.

No table declares a primary key: every key is a unique index named with a per-build
generation suffix, so that a shadow set renamed to live never collides with the next build.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from storage.database import Store

# Raised whenever a table's columns or meaning change: live tables of another version are
# dropped and rebuilt from the events on the next start.
SCHEMA_VERSION = 9
LIVE_PREFIX = "rm_"
SHADOW_PREFIX = "rm_shadow_"

_TYPES = {
    "sqlite": {"text": "TEXT", "int": "INTEGER", "blob": "BLOB"},
    "postgres": {"text": "TEXT", "int": "BIGINT", "blob": "BYTEA"},
}


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    # The column that names an organisation, for per-organisation checksums (None: one group).
    org_column: str | None
    indexes: tuple[tuple[str, ...], ...] = ()
    # The projector reads rows back by key (prefetch, update): the key index must exist while
    # a set is being built. Other keys only guard uniqueness and can be indexed at the end.
    looked_up: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def postgres_types(self) -> list[str]:
        """Its columns' PostgreSQL types, in order (for a binary COPY, which names them)."""
        return [_TYPES["postgres"][kind].lower() for _, kind in self.columns]


LEDGER_SUMS_COLUMNS = (
    ("organization_code", "text"),
    ("months", "int"),
    ("period", "int"),
    ("account_code", "text"),
    ("earmarked", "int"),
    ("debit_fen", "int"),
    ("credit_fen", "int"),
    ("recorded_from_us", "int"),
    ("recorded_to_us", "int"),
)

LEDGER_SUMS_KEY = ("organization_code", "months", "period", "account_code", "earmarked")

ROLL_TOTALS_COLUMNS = (
    ("organization_code", "text"),
    ("members", "int"),
    ("retained", "int"),
    ("pending", "int"),
    ("women", "int"),
    ("migrant", "int"),
    ("new_form", "int"),
)

TABLES: tuple[Table, ...] = (
    Table(
        "position",
        (("name", "text"), ("position", "int"), ("recorded_at_us", "int")),
        key=("name",),
        org_column=None,
        looked_up=True,
    ),
    # 工会组织: current attributes; the tree and employee counts over time are below.
    Table(
        "organizations",
        (
            ("code", "text"),
            ("aggregate_id", "text"),
            ("name", "text"),
            ("level", "text"),
            ("region_code", "text"),
            ("employer_code", "text"),
            ("founded_on", "int"),
            ("status", "text"),
            ("dissolved_on", "int"),
            ("dissolved_at_us", "int"),
            ("parent_code", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
        ),
        key=("code",),
        org_column="code",
        looked_up=True,
        indexes=(("aggregate_id",),),
    ),
    # The tree over time: one row per founding (valid from day 0) and per move.
    Table(
        "org_parents",
        (
            ("code", "text"),
            ("valid_from", "int"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("parent_code", "text"),
        ),
        key=("code", "position"),
        org_column="code",
        # valid_from alone: whether the tree changed after a day (statements' subtree sums);
        # position alone: whether it moved since a version (a roll's anchors, rolls.py).
        indexes=(("parent_code", "code"), ("code", "valid_from"), ("valid_from",), ("position",)),
    ),
    # The tree as it stands now (each union under the parent of its latest move, as
    # org_parents dates them): one row per union and each of its ancestors above it. Kept by
    # the projector for subtree_sums (projections/read_models/subtree_sums.py).
    Table(
        "org_ancestors",
        (("code", "text"), ("ancestor", "text")),
        key=("code", "ancestor"),
        org_column="code",
        # Read by code while a build runs (the ancestors of a batch's unions).
        looked_up=True,
        indexes=(("ancestor",),),
    ),
    # 职工人数 over time, the denominator of 入会率.
    Table(
        "org_employees",
        (
            ("code", "text"),
            ("valid_from", "int"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("employee_count", "int"),
        ),
        key=("code", "position"),
        org_column="code",
        indexes=(("code", "valid_from"),),
    ),
    # 会员名册: who was on which roll, in which status, from when (valid_from) to when
    # (valid_to), as recorded by the events at opened_position and closed_position.
    Table(
        "roll_spans",
        (
            ("member_id", "text"),
            ("opened_position", "int"),
            ("organization_code", "text"),
            ("status", "text"),
            ("sex", "text"),
            ("joined_on", "int"),
            ("valid_from", "int"),
            ("valid_to", "int"),
            ("opened_at_us", "int"),
            ("closed_position", "int"),
            ("closed_at_us", "int"),
            ("transfer_to", "text"),
            ("transfer_reason", "int"),
        ),
        key=("member_id", "opened_position"),
        org_column="organization_code",
        looked_up=True,
        # A union's roll in its order, covering the as-of / as-known filter and every column
        # a roll page shows: its total is counted, and its pages walked, in the index alone.
        indexes=(
            (
                "organization_code",
                "joined_on",
                "member_id",
                "opened_position",
                "valid_from",
                "opened_at_us",
                "closed_at_us",
                "valid_to",
                "status",
                "transfer_to",
                "transfer_reason",
            ),
            # The same in roll order alone: a big subtree's page walks it and stops after the
            # page (rolls.py) instead of sorting every member of the subtree.
            (
                "joined_on",
                "member_id",
                "opened_position",
                "organization_code",
                "valid_from",
                "opened_at_us",
                "closed_at_us",
                "valid_to",
                "status",
                "transfer_to",
                "transfer_reason",
            ),
            # The spans opened, and those closed, since a version: a roll's anchors are moved
            # to a later version by them (rolls.py).
            ("opened_position",),
            ("closed_position",),
        ),
    ),
    # Personal details, one version per join, rejoin and correction; encrypted (AES-GCM).
    Table(
        "member_details",
        (
            ("member_id", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("superseded_position", "int"),
            ("superseded_at_us", "int"),
            ("id_number_hash", "text"),
            ("sex", "text"),
            ("name_enc", "blob"),
            ("id_number_enc", "blob"),
            ("mobile_enc", "blob"),
            ("migrant_worker", "int"),
            ("new_employment_form", "int"),
        ),
        key=("member_id", "position"),
        org_column=None,
        looked_up=True,
        indexes=(("id_number_hash",),),
    ),
    # A roll's counts as point changes (projections/read_models/roll_counts.py): what each
    # event adds to the counts of one union's roll from one day on, as known from its
    # recorded time. A roll's count as of D known at K is the sum of the rows with day <= D
    # and recorded_at_us <= K.
    Table(
        "roll_counts",
        (
            ("position", "int"),
            ("organization_code", "text"),
            ("day", "int"),
            ("recorded_at_us", "int"),
            ("members", "int"),
            ("retained", "int"),
            ("pending", "int"),
            ("women", "int"),
            ("migrant", "int"),
            ("new_form", "int"),
        ),
        key=("position", "organization_code", "day"),
        org_column="organization_code",
        indexes=(
            (
                "organization_code",
                "day",
                "recorded_at_us",
                "members",
                "retained",
                "pending",
                "women",
                "migrant",
                "new_form",
            ),
            ("recorded_at_us",),
            # The few rows after a recent day, over a subtree read from subtree_roll_totals.
            ("day",),
        ),
    ),
    # Every row of roll_counts summed per union: a roll as of a recent day and known now is
    # these sums less the few rows after that day, whatever the size of the roll.
    Table(
        "roll_totals",
        ROLL_TOTALS_COLUMNS,
        key=("organization_code",),
        org_column="organization_code",
        # Upserted by key (ON CONFLICT needs the unique index from the start of a build).
        looked_up=True,
    ),
    # roll_totals summed per union over the unions below it in the tree as it stands now
    # (org_ancestors), as subtree_sums is for ledger_sums.
    Table(
        "subtree_roll_totals",
        ROLL_TOTALS_COLUMNS,
        key=("organization_code",),
        org_column="organization_code",
        looked_up=True,
    ),
    # 会籍变化 with the national change codes 1-6.
    Table(
        "roll_changes",
        (
            ("position", "int"),
            ("line_no", "int"),
            ("member_id", "text"),
            ("organization_code", "text"),
            ("change_code", "int"),
            ("reason_code", "int"),
            ("effective_on", "int"),
            ("recorded_at_us", "int"),
            # 1 for a reinstatement after retention (恢复会籍): change code 1, no reason.
            ("reinstated", "int"),
        ),
        key=("position", "line_no"),
        org_column="organization_code",
        indexes=(("organization_code", "effective_on"), ("member_id", "position")),
    ),
    # 记账凭证
    Table(
        "vouchers",
        (
            ("voucher_id", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("kind", "text"),
            ("effective_on", "int"),
            ("period", "text"),
            ("description", "text"),
            ("reverses", "text"),
            ("reversed_by", "text"),
            ("reversed_position", "int"),
            ("reversed_at_us", "int"),
        ),
        key=("voucher_id",),
        org_column=None,
        looked_up=True,
    ),
    # 分录: one row per posting.
    Table(
        "ledger_lines",
        (
            ("position", "int"),
            ("line_no", "int"),
            ("voucher_id", "text"),
            ("organization_code", "text"),
            ("account_code", "text"),
            ("debit_fen", "int"),
            ("credit_fen", "int"),
            ("earmarked", "int"),
            ("counterparty", "text"),
            ("effective_on", "int"),
            ("recorded_at_us", "int"),
            ("kind", "text"),
            # 记字号 of the voucher in this line's organisation's books (null before numbers).
            ("number", "text"),
        ),
        key=("position", "line_no"),
        org_column="organization_code",
        # Covering for statements: the sums read the index alone, never the table.
        indexes=(
            (
                "organization_code",
                "effective_on",
                "account_code",
                "earmarked",
                "recorded_at_us",
                "debit_fen",
                "credit_fen",
            ),
            ("voucher_id",),
        ),
    ),
    # 分录汇总: the lines summed per organisation, account, earmarked column and month (months
    # 1, period YYYYMM) or year (months 12, period YYYY01), with the earliest and latest
    # recorded times of what each row sums; statements read them for whole periods
    # (projections/read_models/ledger_sums.py).
    Table(
        "ledger_sums",
        LEDGER_SUMS_COLUMNS,
        key=LEDGER_SUMS_KEY,
        org_column="organization_code",
        # Upserted by key (ON CONFLICT needs the unique index from the start of a build).
        looked_up=True,
        # Covering for statements: a scope's periods are read in the index alone.
        indexes=(
            (
                "organization_code",
                "months",
                "period",
                "recorded_to_us",
                "recorded_from_us",
                "account_code",
                "earmarked",
                "debit_fen",
                "credit_fen",
            ),
        ),
    ),
    # ledger_sums summed per union over the unions below it in the tree as it stands now
    # (org_ancestors; its own rows stay in ledger_sums): a statement over a subtree, known
    # now and on a day the tree has not changed since, reads one union's rows instead of
    # every union's (projections/read_models/subtree_sums.py).
    Table(
        "subtree_sums",
        LEDGER_SUMS_COLUMNS,
        key=LEDGER_SUMS_KEY,
        org_column="organization_code",
        # Upserted by key (ON CONFLICT needs the unique index from the start of a build).
        looked_up=True,
    ),
    # 拨缴经费 received (and founding reserves held), for reconciliation with the tax bureau.
    Table(
        "levy_receipts",
        (
            ("voucher_id", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("kind", "text"),
            ("receiving_organization_code", "text"),
            ("base_organization_code", "text"),
            ("employer_code", "text"),
            ("period", "text"),
            ("channel", "text"),
            ("amount_fen", "int"),
            ("received_on", "int"),
        ),
        key=("voucher_id",),
        org_column="receiving_organization_code",
        indexes=(("period", "employer_code"),),
    ),
    # 经费分成政策
    Table(
        "levy_policies",
        (
            ("region_prefix", "text"),
            ("effective_from", "int"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("shares", "text"),
        ),
        key=("region_prefix", "effective_from"),
        org_column=None,
    ),
    # 困难职工档案: one row per file, as it stands (the union is the person's current one: the
    # file follows the membership). Causes and the reason for closing are encrypted.
    Table(
        "hardship_files",
        (
            ("file_id", "text"),
            ("member_id", "text"),
            ("serial", "int"),
            ("opened_by", "text"),
            ("organization_code", "text"),
            ("opened_on", "int"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("causes_enc", "blob"),
            ("status", "text"),
            ("closed_on", "int"),
            ("closed_position", "int"),
            ("reason_enc", "blob"),
        ),
        key=("file_id",),
        org_column="organization_code",
        looked_up=True,
        indexes=(("organization_code", "opened_on"), ("member_id",)),
    ),
    # The figures of a file over time: its opening and each yearly review (年度复核), valid
    # from their day. Household size and income per head are encrypted.
    Table(
        "hardship_states",
        (
            ("file_id", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("kind", "text"),
            ("valid_from", "int"),
            ("category", "text"),
            ("household_enc", "blob"),
            ("income_enc", "blob"),
        ),
        key=("file_id", "position"),
        org_column=None,
    ),
    # 劳模名册: one row per person (by the keyed member id), its highest level and revocation.
    Table(
        "model_workers",
        (
            ("model_worker_id", "text"),
            ("member_id", "text"),
            ("organization_code", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("id_number_hash", "text"),
            ("name_enc", "blob"),
            ("id_number_enc", "blob"),
            ("level", "text"),
            ("first_awarded_year", "int"),
            ("revoked_on", "int"),
            ("revoked_position", "int"),
            ("reason_enc", "blob"),
        ),
        key=("model_worker_id",),
        org_column="organization_code",
        looked_up=True,
        indexes=(("organization_code",), ("member_id",)),
    ),
    # The honours of each model worker (劳动模范, 五一劳动奖章 ...), one row per award.
    Table(
        "model_worker_honours",
        (
            ("model_worker_id", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("honour", "text"),
            ("level", "text"),
            ("awarded_year", "int"),
        ),
        key=("model_worker_id", "position"),
        org_column=None,
    ),
    # Payouts to persons by programme (帮扶, 助学, 劳模 ...), with the register entry each was
    # paid against; a reversal is a row of its own with the negative amount.
    Table(
        "person_payouts",
        (
            ("voucher_id", "text"),
            ("position", "int"),
            ("recorded_at_us", "int"),
            ("payer_code", "text"),
            ("programme", "text"),
            ("account_code", "text"),
            ("member_id", "text"),
            ("hardship_file_id", "text"),
            ("model_worker_id", "text"),
            ("amount_fen", "int"),
            ("paid_on", "int"),
            ("reverses", "text"),
        ),
        key=("voucher_id",),
        org_column="payer_code",
        looked_up=True,
        indexes=(("payer_code", "paid_on"),),
    ),
    # 审计索引: the positions of the events that concern a union (its own streams, or data
    # naming its code), so that GET /v1/audit/events?organization_code= reads only those.
    Table(
        "audit_index",
        (("organization_code", "text"), ("position", "int")),
        key=("organization_code", "position"),
        org_column="organization_code",
    ),
)

TABLES_BY_NAME = {t.name: t for t in TABLES}


@dataclass(frozen=True)
class TableSet:
    """One complete set of read-model tables under a prefix."""

    prefix: str

    def table(self, name: str) -> str:
        return self.prefix + name

    def refresh_statistics(self, store: Store, conn: Any) -> None:
        """Fresh planner statistics for these tables; on PostgreSQL also VACUUM, whose
        visibility map lets the statement and roll queries read their covering indexes alone
        (never vacuumed, they read every row's heap page too). conn must not be inside a
        transaction."""
        if store.is_sqlite:
            conn.execute("ANALYZE")
            return
        conn.autocommit = True
        try:
            for table in TABLES:
                conn.execute(f"VACUUM (ANALYZE) {self.table(table.name)}")
        finally:
            conn.autocommit = False

    def exists(self, store: Store, cur) -> bool:
        name = self.table("position")
        if store.is_sqlite:
            cur.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
        else:
            cur.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s",
                (name,),
            )
        return cur.fetchone() is not None

    def create(self, store: Store, cur, *, secondary_indexes: bool = True) -> None:
        """Creates every table with its indexes and a position row at 0. secondary_indexes
        False: only the unique keys the projector looks rows up by; a bulk build is faster
        creating the rest once at the end (create_secondary_indexes) than maintaining them
        row by row."""
        types = _TYPES[store.kind]
        generation = secrets.token_hex(4)
        for table in TABLES:
            name = self.table(table.name)
            columns = ", ".join(f"{c} {types[t]}" for c, t in table.columns)
            cur.execute(f"CREATE TABLE {name} ({columns})")
            if table.looked_up or secondary_indexes:
                cur.execute(self._key_statement(table, generation))
        if secondary_indexes:
            self.create_secondary_indexes(store, cur, keys=False)
        cur.executemany(
            store.sql(f"INSERT INTO {self.table('position')} VALUES (?, ?, ?)"),
            [("position", 0, 0), ("schema", SCHEMA_VERSION, 0)],
        )

    def _key_statement(self, table: Table, generation: str) -> str:
        name = self.table(table.name)
        return f"CREATE UNIQUE INDEX {name}_key_{generation} ON {name} ({', '.join(table.key)})"

    def secondary_index_statements(self, table: Table, *, keys: bool = True) -> list[str]:
        """The statements that create a table's query indexes, and (keys) the unique key
        create() left out: a duplicate key fails there, so a bulk build still proves every
        key unique."""
        generation = secrets.token_hex(4)
        name = self.table(table.name)
        statements = []
        if keys and not table.looked_up:
            statements.append(self._key_statement(table, generation))
        for n, cols in enumerate(table.indexes):
            statements.append(
                f"CREATE INDEX {name}_i{n}_{generation} ON {name} ({', '.join(cols)})"
            )
        return statements

    def create_secondary_indexes(self, store: Store, cur, *, keys: bool = True) -> None:
        """Every table's secondary_index_statements, in this transaction."""
        for table in TABLES:
            for statement in self.secondary_index_statements(table, keys=keys):
                cur.execute(statement)

    def _secondary_indexes(self, store: Store, cur, table: str) -> dict[str, tuple[str, ...]]:
        """The non-unique indexes of a table of this set: name -> columns."""
        found: dict[str, tuple[str, ...]] = {}
        if store.is_sqlite:
            cur.execute(f"PRAGMA index_list({table})")
            for row in cur.fetchall():
                name, unique = row[1], row[2]
                if not unique:
                    cur.execute(f"PRAGMA index_info({name})")
                    found[name] = tuple(r[2] for r in sorted(cur.fetchall()))
            return found
        cur.execute(
            "SELECT i.relname, array_agg(a.attname ORDER BY k.n) FROM pg_index x"
            " JOIN pg_class i ON i.oid = x.indexrelid"
            " CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum"
            " WHERE x.indrelid = to_regclass(%s) AND NOT x.indisunique GROUP BY i.relname",
            (table,),
        )
        return {name: tuple(columns) for name, columns in cur.fetchall()}

    def ensure_indexes(self, store: Store, cur) -> None:
        """Brings the query indexes of an existing set to those TABLES declares: creates the
        missing ones and drops the ones no longer declared (a set created by an earlier
        version of the same schema)."""
        generation = secrets.token_hex(4)
        for table in TABLES:
            name = self.table(table.name)
            present = self._secondary_indexes(store, cur, name)
            for index, columns in present.items():
                if columns not in table.indexes:
                    cur.execute(f"DROP INDEX {index}")
            for n, cols in enumerate(table.indexes):
                if cols not in present.values():
                    cur.execute(
                        f"CREATE INDEX {name}_i{n}_{generation} ON {name} ({', '.join(cols)})"
                    )

    def version(self, store: Store, cur) -> int | None:
        cur.execute(
            store.sql(f"SELECT position FROM {self.table('position')} WHERE name = ?"), ("schema",)
        )
        row = cur.fetchone()
        return None if row is None else int(row[0])

    def drop(self, store: Store, cur) -> None:
        for table in TABLES:
            cur.execute(f"DROP TABLE IF EXISTS {self.table(table.name)}")

    def rename_to(self, store: Store, cur, other: TableSet) -> None:
        for table in TABLES:
            cur.execute(f"ALTER TABLE {self.table(table.name)} RENAME TO {other.table(table.name)}")


LIVE = TableSet(LIVE_PREFIX)
SHADOW = TableSet(SHADOW_PREFIX)


def ensure_live(store: Store) -> None:
    """Creates the live tables if they are missing (first start on a store), or recreates
    them empty if they are of another schema version: catching up then rebuilds them."""
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            if not store.is_sqlite:
                # Serialise first starts of several processes on one database (on SQLite,
                # BEGIN IMMEDIATE already does).
                cur.execute("SELECT pg_advisory_xact_lock(hashtext('rm_schema'))")
            if LIVE.exists(store, cur) and LIVE.version(store, cur) == SCHEMA_VERSION:
                LIVE.ensure_indexes(store, cur)
                return
            LIVE.drop(store, cur)
            LIVE.create(store, cur)
    finally:
        conn.close()
