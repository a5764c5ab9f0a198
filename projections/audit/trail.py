"""The tamper-evident audit trail (防篡改审计链): hash chain, signed seals, provenance.

What auditors (经审) get
------------------------
- A hash chain over the event log in position order (projections/audit/chain.py). Each link
  hashes the previous link with the event row exactly as stored: stream id, version, topic,
  the encrypted payload bytes and the position. Verification needs no decryption key, only the
  rows.
- Seals (审计封印, projections/audit/seals.py): the chain head signed with the deployment's
  Ed25519 key, stored in `audit_seals` and returned so that auditors keep copies outside the
  system. The server seals by itself (projections/audit/sealer.py: at least hourly while
  events arrive, and at every month close); `ledger audit seal` / POST /v1/audit/seals make
  one at once; `ledger audit export-seals F` copies them all to a file.
- Verification: `ledger audit verify [--seal-file F]` / GET /v1/audit/verification recompute
  the chain from the first event, check every seal's signature (against the public key
  configured outside the database, LEDGER_AUDIT_PUBLIC_KEY) and hash, and name the first bad
  position. A store with events and no seal, or no public key configured, is not proven.
- Provenance: `events()` / GET /v1/audit/events list the raw stream with position, recorded
  time, actor and masked data, so that every statement line traces back to its event. Each
  payload is bound to its row (storage/payload_binding.py): a payload moved to another row
  is listed with a decode error.

What is and is not detectable
-----------------------------
The seals are the proof; everything else in the database could be rewritten by someone with
write access, and is therefore only used to locate damage.

- Changing, deleting, inserting or reordering any event at or before a seal's position is
  detected: the chain recomputed from the rows no longer reaches that seal's hash, and nobody
  can re-sign without the private key. The recorded per-event links (`audit_chain`) name the
  exact position; if those were rewritten as well, the damage is still detected and is located
  to the stretch between two seals.
- A gap in positions alone proves nothing: PostgreSQL skips notification ids when an insert is
  rolled back (a conflicting concurrent write does this in normal operation). A deletion shows
  as a chained position whose row is gone, and always as a seal whose hash no longer matches.
- Events after the last seal are NOT protected: they can be changed, deleted or forged, and a
  later seal would then vouch for what it found. The same holds for deleting the newest events
  and the seal rows after them (and the audit_chain rows): only a copy of the seal kept outside
  the database (`verify --seal-file`) shows that truncation; with every seal deleted the store
  alone is not proven either (no seal). A new seal never vouches for rows that contradict an
  existing seal: sealing refuses to extend the chain over them.
- Seals signed by any key other than the one configured outside the database are refused, and
  so is every seal when none is configured: the database names the key in each seal, so it
  cannot be what decides which key to trust.

Seal cadence (封印频率): what happened since the last seal is unproven. The server seals at
least hourly while events arrive and at every month-end close (月结); keep the seals outside the
system too (`ledger audit export-seals F` on a schedule, to another machine). Sealing is cheap:
it chains only the events since the previous seal.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteRecorder

from projections.audit.chain import ChainCheck, Problem, SealPoint, check_chain, next_link
from projections.audit.events import (
    decode,
    event_record,
    mentions,
    own_stream_ids,
)
from projections.audit.seals import (
    AuditKeyError,
    load_signing_key,
    make_seal,
    public_key_text,
    read_seal_file,
    seal_fault,
    trusted_public_keys,
)
from projections.audit.store import (
    AuditStore,
    ChainTip,
    LastSeal,
    PostgresAuditStore,
    SQLiteAuditStore,
    StoreState,
)
from storage.event_store import EventLog

if TYPE_CHECKING:
    from projections.read_models.models import ReadModels

MAX_EVENTS_LIMIT = 1000
SCAN_BATCH_EVENTS = 500
# Events one filtered request decodes beyond what the audit index covers (the newest, not yet
# projected): the answer's next_after then says where to go on.
MAX_SCANNED_EVENTS = 5000
PUBLIC_SEAL_FIELDS = (
    "seal_id",
    "format",
    "position",
    "event_count",
    "chain_hash",
    "sealed_at",
    "algorithm",
    "public_key",
    "signature",
)


NO_PUBLIC_KEY = (
    "no audit public key is configured outside the database (LEDGER_AUDIT_PUBLIC_KEY or "
    "LEDGER_AUDIT_PUBLIC_KEY_FILE), so no seal can be trusted; `ledger audit public-key` "
    "prints the signing key's public key (未配置审计公钥)"
)
NO_SEAL = (
    "the store holds events but no seal: nothing is proven (未封印); the server seals by "
    "itself, or seal now with `ledger audit seal`"
)


def _seal_due(
    head: int, last: LastSeal | None, now: datetime.datetime, interval: datetime.timedelta
) -> bool:
    if last is None:
        return head > 0
    if head <= last.position:
        return False
    try:
        sealed_at = datetime.datetime.fromisoformat(last.sealed_at)
    except ValueError:
        return True  # an unreadable time proves nothing about when the last seal was made
    return now - sealed_at >= interval


def open_audit_store(ledger: EventLog) -> AuditStore:
    recorder = ledger.recorder
    table = recorder.events_table_name  # type: ignore[attr-defined]
    if isinstance(recorder, SQLiteRecorder):  # by class, not module: see storage/pg_recorder.py
        path = ledger.env.get("SQLITE_DBNAME") or ":memory:"
        if ":memory:" in path or "mode=memory" in path:
            raise ValueError("the audit trail needs a database file, not an in-memory SQLite")
        return SQLiteAuditStore(path, table)
    return PostgresAuditStore(ledger.settings.database_url, table)


def _seal_key(seal: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (seal.get("position"), seal.get("chain_hash"), seal.get("signature"))


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AuditTrail:
    """审计: seals, verification and provenance over one ledger's event store.

    read_models: where the audit index lives (filtered event lists read it); without them a
    filtered list scans, at most MAX_SCANNED_EVENTS events per call."""

    def __init__(self, ledger: EventLog, read_models: ReadModels | None = None) -> None:
        self.ledger = ledger
        self.settings = ledger.settings
        self.read_models = read_models
        self.store = open_audit_store(ledger)
        self.store.ensure_tables()
        # The last verification's answer and the state of the store it saw (one per trail,
        # and so per store): GET /v1/audit/verification answers from it until that changes.
        self._verified: tuple[StoreState, dict[str, Any]] | None = None
        self._verifying = threading.Lock()

    # --- provenance --------------------------------------------------------------------------

    def events(
        self,
        after: int = 0,
        limit: int = 100,
        organization_code: str | None = None,
        *,
        unmasked: bool = False,
    ) -> dict[str, Any]:
        """The event stream after a position, in order, decoded and masked (personal data
        shown whole with `unmasked`: the caller records that reading): `items`, and
        `next_after`, the position to pass as `after` to go on (None: the end of the log).

        With organization_code: only events in that organisation's own streams (its record and
        its book) or whose data names the code anywhere (postings, counterparties, transfers,
        members joining it). Those are read through the audit index
        (projections/read_models/projector.py) as far as it reaches; the newest events beyond it
        are scanned, at most MAX_SCANNED_EVENTS of them per call.
        """
        if not isinstance(after, int) or after < 0:
            raise ValueError("after is a position, 0 or more")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError("limit is 1 or more")
        limit = min(limit, MAX_EVENTS_LIMIT)
        if organization_code is None:
            notifications = self.ledger.recorder.select_notifications(
                start=after, limit=limit, inclusive_of_start=False
            )
            items = [self._record(n, unmasked) for n in notifications]
            return {
                "items": items,
                "next_after": items[-1]["position"] if len(items) == limit else None,
            }
        found: list[dict[str, Any]] = []
        cursor = after
        indexed_through = self._indexed_through()
        if cursor < indexed_through:
            assert self.read_models is not None
            positions = self.read_models.audit_positions(
                organization_code, after=cursor, through=indexed_through, limit=limit
            )
            found = [self._record(n, unmasked) for n in self.ledger.notifications_at(positions)]
            if len(found) == limit:
                return {"items": found, "next_after": found[-1]["position"]}
            cursor = indexed_through
        own = own_stream_ids(organization_code)
        scanned = 0
        while scanned < MAX_SCANNED_EVENTS:
            notifications = self.ledger.recorder.select_notifications(
                start=cursor,
                limit=min(SCAN_BATCH_EVENTS, MAX_SCANNED_EVENTS - scanned),
                inclusive_of_start=False,
            )
            if not notifications:
                return {"items": found, "next_after": None}
            for notification in notifications:
                cursor = notification.id
                scanned += 1
                data, event, error = decode(self.ledger.mapper, notification)
                if notification.originator_id in own or mentions(data, organization_code):
                    found.append(event_record(notification, data, event, error, unmasked=unmasked))
                    if len(found) == limit:
                        return {"items": found, "next_after": cursor}
        return {"items": found, "next_after": cursor}

    def trace(self, stream_id: UUID, *, unmasked: bool = False) -> list[dict[str, Any]]:
        """The events of one stream (a voucher's, a union's) as the stream lists them, each
        with its place in the chain: `chained` (the chain has reached it), `link_ok` (its
        recorded link is the hash of the link before it and the row as stored now), `link`,
        and `seal`, the first seal at or after it (None: no seal covers it yet) with
        `seal_ok` (signed by the key configured outside the database)."""
        traced = self.store.trace_stream(stream_id)
        positions = [t.position for t in traced]
        notifications = {n.id: n for n in self.ledger.notifications_at(positions)}
        seals = self.store.seals()
        try:
            trusted = trusted_public_keys(self.settings)
        except AuditKeyError:
            trusted = set()
        found = []
        for item in traced:
            notification = notifications.get(item.position)
            if notification is None:
                continue
            record = self._record(notification, unmasked)
            link_ok = (
                item.link is not None
                and item.previous is not None
                and next_link(item.previous, *item.row) == item.link
            )
            covering = next((x for x in seals if x["position"] >= item.position), None)
            fault = None
            if covering is not None:
                fault = seal_fault(covering, trusted) if trusted else NO_PUBLIC_KEY
            record["chain"] = {
                "chained": item.link is not None,
                "link_ok": link_ok,
                "link": item.link.hex() if item.link is not None else None,
                "seal": None if covering is None else self._public(covering),
                "seal_ok": covering is not None and fault is None,
                "seal_fault": fault,
            }
            found.append(record)
        return found

    def _indexed_through(self) -> int:
        """The position through which the audit index is complete (0: no index)."""
        if self.read_models is None:
            return 0
        return self.read_models.position()

    def _record(self, notification: Any, unmasked: bool) -> dict[str, Any]:
        data, event, error = decode(self.ledger.mapper, notification)
        return event_record(notification, data, event, error, unmasked=unmasked)

    # --- seals -------------------------------------------------------------------------------

    def seal(
        self,
        *,
        now: datetime.datetime | None = None,
        only_if_older_than: datetime.timedelta | None = None,
    ) -> dict[str, Any] | None:
        """Chains the events recorded since the last seal and signs the chain head.

        only_if_older_than: seal only if events arrived since the latest seal and that seal is
        at least this old (or there is none), decided under the chain lock, so that any
        number of sealers make one seal per interval; None when not due."""
        now = now or utc_now()
        key = load_signing_key(self.settings, create=True)
        assert key is not None  # create=True makes one
        self.store.extend_chain()

        def make(tip: ChainTip, last: LastSeal | None) -> dict[str, Any] | None:
            if only_if_older_than is not None and not _seal_due(
                tip.position, last, now, only_if_older_than
            ):
                return None
            return make_seal(
                key,
                position=tip.position,
                event_count=tip.ordinal,
                chain_hash=tip.link,
                sealed_at=now.isoformat(),
            )

        made = self.store.insert_seal(make)
        return None if made is None else self._public(made)

    def seal_due(self, now: datetime.datetime, interval: datetime.timedelta) -> bool:
        """Whether seal(only_if_older_than=interval) would seal now (read without a lock)."""
        return _seal_due(self.store.state().head_position, self.store.last_seal(), now, interval)

    def seals(self) -> list[dict[str, Any]]:
        return [self._public(seal) for seal in self.store.seals()]

    def latest_seal(self) -> dict[str, Any] | None:
        """The newest seal (what an export's header names), or None before the first."""
        seal = self.store.latest_seal()
        return None if seal is None else self._public(seal)

    @staticmethod
    def _public(seal: dict[str, Any]) -> dict[str, Any]:
        return {name: seal[name] for name in PUBLIC_SEAL_FIELDS if name in seal}

    def public_key(self, *, create: bool = False) -> str | None:
        """The signing key's public key (what LEDGER_AUDIT_PUBLIC_KEY is set to)."""
        key = load_signing_key(self.settings, create=create)
        return None if key is None else public_key_text(key)

    def export_seals(self, path: Path | str) -> tuple[int, int]:
        """Writes every seal of the store to a file (JSON Lines), keeping every seal the file
        already holds: exporting again never drops a seal kept earlier, even one since deleted
        from the store. Written whole to a temporary file, fsynced, then renamed into place.
        Returns (seals written, of which only the file had)."""
        path = Path(path)
        kept = read_seal_file(path) if path.exists() else []
        stored = self.seals()
        stored_keys = {_seal_key(seal) for seal in stored}
        only_in_file = [seal for seal in kept if _seal_key(seal) not in stored_keys]
        merged = sorted(
            [*stored, *only_in_file],
            key=lambda seal: (seal.get("position", 0), seal.get("sealed_at", "")),
        )
        lines = "".join(
            json.dumps(seal, ensure_ascii=False, sort_keys=True) + "\n" for seal in merged
        )
        directory = path.absolute().parent
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        return len(merged), len(only_in_file)

    # --- verification ------------------------------------------------------------------------

    def verify(
        self,
        seal_file: Path | str | None = None,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Recomputes the chain from the first event and checks every seal against it.

        seal_file: seals an auditor kept outside the system; each must verify and match the
        store too, and one missing from the store's own table is reported.
        on_progress(position, head_position) is called now and then during the pass.
        """
        return self._verify(seal_file, on_progress)[1]

    def _verify(
        self,
        seal_file: Path | str | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> tuple[StoreState, dict[str, Any]]:
        outside = read_seal_file(Path(seal_file)) if seal_file is not None else []
        seal_problems: list[Problem] = []
        try:
            trusted = trusted_public_keys(self.settings)
        except AuditKeyError as exc:
            trusted = set()
            seal_problems.append(Problem(None, "public_key_invalid", str(exc)))
        else:
            if not trusted:
                seal_problems.append(Problem(None, "no_public_key", NO_PUBLIC_KEY))
        missing = self.store.seals_missing()
        if missing:
            seal_problems.append(
                Problem(
                    None,
                    "seal_deleted",
                    (
                        f"{missing} seal(s) were made but are no longer in the store's audit_seals "
                        "table (封印记录被删除): verify against a copy of the seals kept outside "
                        "(`ledger audit verify --seal-file F`) to find what they covered"
                    ),
                )
            )
        with self.store.snapshot() as snapshot:
            state = StoreState(
                snapshot.head_position,
                len(snapshot.seals),
                max((s["seal_id"] for s in snapshot.seals), default=0),
            )
            if snapshot.head_position and not snapshot.seals and not outside:
                seal_problems.append(Problem(None, "no_seal", NO_SEAL))
            # With no key to trust, no seal proves anything: the chain is still walked, to
            # locate damage, and the one problem is the missing key.
            points = (
                self._seal_points(snapshot.seals, outside, trusted, seal_problems)
                if trusted
                else []
            )
            head = snapshot.head_position
            progress = None if on_progress is None else (lambda p: on_progress(p, head))
            check = check_chain(
                snapshot.rows, snapshot.links, points, progress, known_problems=seal_problems
            )
        seals_checked = len(points) + sum(p.kind == "seal_invalid" for p in seal_problems)
        # The newest position any trusted seal (stored or kept outside) claims; verified_through
        # is how far the rows bear that out.
        sealed_through = max((point.position for point in points), default=0)
        return state, self._report(
            check, seals_checked=seals_checked, sealed_through=sealed_through
        )

    def verification(self) -> dict[str, Any]:
        """verify() as GET /v1/audit/verification answers it: from the last answer while the
        store's head position and seals are what that answer saw (a new event, or a seal made
        or removed, means verifying again). One verification at a time per trail: concurrent
        requests wait for it and share its answer."""
        with self._verifying:
            current = self.store.state()
            if self._verified is not None and self._verified[0] == current:
                return {**self._verified[1], "cached": True}
            state, report = self._verify(None, None)
            self._verified = (state, report)
            return {**report, "cached": False}

    @staticmethod
    def _seal_points(
        stored: list[dict[str, Any]],
        outside: list[dict[str, Any]],
        trusted: set[str],
        problems: list[Problem],
    ) -> list[SealPoint]:
        points: list[SealPoint] = []
        stored_keys = {_seal_key(seal) for seal in stored}
        seen: set[tuple[Any, Any, Any]] = set()
        for source, seals in (("store", stored), ("file", outside)):
            for seal in seals:
                key = _seal_key(seal)
                if key in seen:
                    continue
                seen.add(key)
                position = seal.get("position") if isinstance(seal.get("position"), int) else None
                fault = seal_fault(seal, trusted)
                if fault is not None:
                    problems.append(
                        Problem(
                            position,
                            "seal_invalid",
                            f"seal at position {position} ({source}): {fault}",
                        )
                    )
                    continue
                if source == "file" and key not in stored_keys:
                    problems.append(
                        Problem(
                            position,
                            "seal_missing",
                            f"the seal at position {position} kept outside is missing from the "
                            "store's audit_seals table (封印记录被删除)",
                        )
                    )
                points.append(
                    SealPoint(
                        seal["position"],
                        bytes.fromhex(seal["chain_hash"]),
                        seal["event_count"],
                        source,
                    )
                )
        return points

    @staticmethod
    def _report(check: ChainCheck, *, seals_checked: int, sealed_through: int) -> dict[str, Any]:
        first = check.first_bad
        bound = first.position if first is not None and first.position is not None else None
        proven = [p for p in check.matched_seal_positions if bound is None or p < bound]
        verified_through = max(proven, default=0)
        if first is None:
            if not check.events_checked:
                reason = "the store holds no events yet: nothing to prove"
            elif seals_checked:
                reason = (
                    f"all {check.events_checked} events match the chain and {seals_checked} "
                    f"seals: proven unchanged through position {verified_through}"
                )
            else:  # not reached: events and no seal are a problem of their own (NO_SEAL)
                reason = f"all {check.events_checked} events match the chain"
            if check.unsealed_events:
                reason += (
                    f"; {check.unsealed_events} events after the last seal are not protected "
                    "yet (未封印)"
                )
        else:
            reason = first.reason
        return {
            "ok": first is None,
            "verified_through": verified_through,
            "seals_checked": seals_checked,
            "sealed_through": sealed_through,
            "first_bad_position": bound,
            "reason": reason,
            "head_position": check.head_position,
            "events_checked": check.events_checked,
            "unsealed_events": check.unsealed_events,
            "problem_count": check.problem_count,
            "problems": [p.as_dict() for p in check.problems],
        }
