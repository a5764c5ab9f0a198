"""ReadModels: the read side's one entry point for the HTTP layer and the command line.

Queries return plain JSON-ready dicts (amounts as decimal strings, dates ISO). Personal data
comes back unmasked: masking, and recording unmasked reads, is the caller's job.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from typing import Any

from domain.errors import NotFound
from projections.read_models.organizations import OrganizationQueries
from projections.read_models.projector import Projector
from projections.read_models.registers import RegisterQueries
from projections.read_models.rolls import RollQueries
from projections.read_models.rows import from_micros, iso_day, known_us
from projections.read_models.schema import LIVE, TableSet, ensure_live
from projections.read_models.statements import StatementQueries
from storage.database import Store
from storage.event_store import EventLog
from storage.pii_cipher import PiiCipher

WAIT_POLL_S = 0.02
MAINTAIN_EVERY_EVENTS = 50_000


class ReadModels:
    def __init__(self, ledger: EventLog, *, tables: TableSet = LIVE) -> None:
        self.ledger = ledger
        self.settings = ledger.settings
        self.store = Store(self.settings)
        self.cipher = PiiCipher.from_settings(self.settings)
        self.tables = tables
        if tables is LIVE:
            ensure_live(self.store)
        self.projector = Projector(ledger, self.store, self.cipher)
        self.rolls = RollQueries(self.store, tables, self.cipher)
        self.statements = StatementQueries(self.store, tables)
        self.organizations = OrganizationQueries(self.store, tables)
        self.registers = RegisterQueries(self.store, tables, self.cipher)
        self._maintained_at = 0  # the position at the last maintain()

    def close(self) -> None:
        self.store.close()

    # --- the projection ---------------------------------------------------------------------

    def catch_up(self, max_events: int | None = None, *, batch_events: int | None = None) -> int:
        """Applies pending events (at most max_events) and returns the position reached;
        batch_events None: the projector's choice (Projector.catch_up)."""
        return self.projector.catch_up(
            self.tables, max_events=max_events, batch_events=batch_events
        )

    def maintain(self, min_events: int | None = None) -> bool:
        """Refreshes the tables' statistics (and, on PostgreSQL, vacuums them) once min_events
        events (default MAINTAIN_EVERY_EVENTS) have been applied since the last time, or on the
        first call over a store that holds that many. Autovacuum reaches freshly written tables only
        after a while; until then the statement and roll queries read every heap page and
        plan without statistics. True if it ran."""
        position = self.position()
        if position - self._maintained_at < (min_events or MAINTAIN_EVERY_EVENTS):
            return False
        conn = self.store.connect()
        try:
            self.tables.refresh_statistics(self.store, conn)
        finally:
            conn.close()
        self._maintained_at = position
        return True

    def position(self) -> int:
        with self.store.reader() as cur:
            return self.projector.read_position(cur, self.tables, lock=False)[0]

    def audit_positions(
        self, organization_code: str, *, after: int, through: int, limit: int
    ) -> list[int]:
        """From the audit index: the positions after `after` and at most `through` of the
        events that concern an organisation (its own streams, or data naming its code)."""
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    f"SELECT position FROM {self.tables.table('audit_index')} WHERE "
                    "organization_code = ? AND position > ? AND position <= ? "
                    "ORDER BY position LIMIT ?"
                ),
                (organization_code, after, through, limit),
            )
            return [int(row[0]) for row in cur.fetchall()]

    def lag(self) -> int:
        return max(0, self.ledger.head_position() - self.position())

    def wait_for(self, position: int, timeout_s: float = 5.0) -> bool:
        """Read-your-writes: catches up until `position` is projected (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while self.position() < position:
            self.catch_up()
            if self.position() >= position:
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(WAIT_POLL_S)
        return True

    # --- rolls ------------------------------------------------------------------------------

    def _require_org(self, code: str) -> None:
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    f"SELECT 1 FROM {self.tables.table('organizations')} WHERE code = ?"
                ),
                (code,),
            )
            if cur.fetchone() is None:
                raise NotFound(f"organisation {str(code)[:40]} not found")

    def roll(
        self,
        code: str,
        *,
        as_of: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        status: str | None = None,
        page: int = 1,
        page_size: int = 100,
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.rolls.roll(
            code,
            as_of=as_of,
            k_us=known_us(known_at),
            scope=scope,
            status=status,
            page=page,
            page_size=page_size,
        )

    def roll_summary(
        self,
        code: str,
        *,
        as_of: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.rolls.summary(code, as_of=as_of, k_us=known_us(known_at), scope=scope)

    def roll_changes(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        page: int = 1,
        page_size: int = 100,
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.rolls.changes(
            code,
            date_from=date_from,
            date_to=date_to,
            k_us=known_us(known_at),
            scope=scope,
            page=page,
            page_size=page_size,
        )

    def roll_changes_by_month(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
    ) -> list[dict[str, Any]]:
        self._require_org(code)
        return self.rolls.changes_by_month(
            code, date_from=date_from, date_to=date_to, k_us=known_us(known_at), scope=scope
        )

    def member_history(self, member_id: str) -> list[dict[str, Any]]:
        return self.rolls.history(member_id)

    def member_ids_by_id_number(self, id_number: str) -> list[str]:
        """Members recorded with this identity number, found by its keyed hash."""
        return self.rolls.member_ids_for(self.cipher.lookup_hash(id_number))

    # --- registers (困难职工档案, 劳模名册) ------------------------------------------------

    def hardship_files(
        self,
        code: str,
        *,
        as_of: datetime.date,
        scope: str = "self",
        status: str | None = None,
        page: int = 1,
        page_size: int = 100,
        everything: bool = False,
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.registers.hardship_files(
            code,
            as_of=as_of,
            scope=scope,
            status=status,
            page=page,
            page_size=page_size,
            everything=everything,
        )

    def model_workers(
        self,
        code: str,
        *,
        today: datetime.date,
        scope: str = "self",
        level: str | None = None,
        page: int = 1,
        page_size: int = 100,
        everything: bool = False,
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.registers.model_workers(
            code,
            scope=scope,
            level=level,
            page=page,
            page_size=page_size,
            today=today,
            everything=everything,
        )

    def assistance(
        self, code: str, *, date_from: datetime.date, date_to: datetime.date, scope: str = "self"
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.registers.assistance(code, date_from=date_from, date_to=date_to, scope=scope)

    # --- statements -------------------------------------------------------------------------

    def balance_sheet(
        self,
        code: str,
        *,
        as_of: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        consolidated: bool = False,
    ) -> dict[str, Any]:
        self._require_org(code)
        k_us = known_us(known_at)
        found = self.statements.balance_sheet(
            code, as_of=as_of, k_us=k_us, scope=scope, consolidated=consolidated
        )
        return self._reflects(found, known_at, k_us)

    def income_expenditure(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        consolidated: bool = False,
    ) -> dict[str, Any]:
        self._require_org(code)
        k_us = known_us(known_at)
        found = self.statements.income_expenditure(
            code,
            date_from=date_from,
            date_to=date_to,
            k_us=k_us,
            scope=scope,
            consolidated=consolidated,
        )
        return self._reflects(found, known_at, k_us)

    def trial_balance(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        consolidated: bool = False,
    ) -> dict[str, Any]:
        self._require_org(code)
        k_us = known_us(known_at)
        found = self.statements.trial_balance(
            code,
            date_from=date_from,
            date_to=date_to,
            k_us=k_us,
            scope=scope,
            consolidated=consolidated,
        )
        return self._reflects(found, known_at, k_us)

    def journal(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        page: int = 1,
        page_size: int = 100,
        account_code: str | None = None,
    ) -> dict[str, Any]:
        self._require_org(code)
        return self.statements.journal(
            code,
            date_from=date_from,
            date_to=date_to,
            k_us=known_us(known_at),
            scope=scope,
            page=page,
            page_size=page_size,
            account_code=account_code,
        )

    # --- whole results, for exports: chunks of rows read in one snapshot -------------------

    def whole_roll(
        self,
        code: str,
        *,
        as_of: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        status: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        self._require_org(code)
        return self.rolls.whole_roll(
            code, as_of=as_of, k_us=known_us(known_at), scope=scope, status=status
        )

    def whole_roll_changes(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
    ) -> Iterator[list[dict[str, Any]]]:
        self._require_org(code)
        return self.rolls.whole_changes(
            code, date_from=date_from, date_to=date_to, k_us=known_us(known_at), scope=scope
        )

    def whole_journal(
        self,
        code: str,
        *,
        date_from: datetime.date,
        date_to: datetime.date,
        known_at: datetime.datetime | None = None,
        scope: str = "self",
        account_code: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        self._require_org(code)
        return self.statements.whole_journal(
            code,
            date_from=date_from,
            date_to=date_to,
            k_us=known_us(known_at),
            scope=scope,
            account_code=account_code,
        )

    def _reflects(
        self, found: dict[str, Any], known_at: datetime.datetime | None, k_us: int
    ) -> dict[str, Any]:
        """Names what a statement reflects: known_at (if given) and `position`, the last
        posting recorded by then (a statement counts postings only). Asked before and after
        a correction, the two answers differ in position as in figures."""
        return {
            **found,
            **({"known_at": known_at.isoformat()} if known_at is not None else {}),
            "position": self.statements.last_posting(k_us),
        }

    # --- organisations and policies ---------------------------------------------------------

    def organization(self, code: str) -> dict[str, Any]:
        with self.store.reader() as cur:
            cur.execute(
                self.store.sql(
                    "SELECT code, name, level, region_code, employer_code, founded_on, status,"
                    f" dissolved_on, parent_code FROM {self.tables.table('organizations')}"
                    " WHERE code = ?"
                ),
                (code,),
            )
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"organisation {str(code)[:40]} not found")
        keys = (
            "code",
            "name",
            "level",
            "region_code",
            "employer_code",
            "founded_on",
            "status",
            "dissolved_on",
            "parent_code",
        )
        result = dict(zip(keys, row, strict=True))
        result["founded_on"] = iso_day(result["founded_on"])
        result["dissolved_on"] = iso_day(result["dissolved_on"])
        return result

    def levy_policies(self) -> list[dict[str, Any]]:
        with self.store.reader() as cur:
            cur.execute(
                "SELECT region_prefix, effective_from, shares, position, recorded_at_us"
                f" FROM {self.tables.table('levy_policies')}"
                " ORDER BY region_prefix, effective_from"
            )
            rows = cur.fetchall()
        return [
            {
                "region_code": prefix,
                "effective_from": iso_day(day),
                "shares": json.loads(shares),
                "position": position,
                "recorded_at": from_micros(at),
            }
            for prefix, day, shares, position, at in rows
        ]
