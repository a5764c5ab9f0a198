"""The tamper-evident audit trail (防篡改审计链): hash chain, signed seals, provenance.

What auditors (经审) get
------------------------
- A hash chain over the event log in position order (projections/audit_chain.py). Each link
  hashes the previous link with the event row exactly as stored: stream id, version, topic,
  the encrypted payload bytes and the position. Verification needs no decryption key, only the
  rows.
- Seals (审计封印, projections/audit_seals.py): the chain head signed with the deployment's
  Ed25519 key, stored in `audit_seals` and returned so that auditors keep copies outside the
  system. `ledger audit seal` / POST /v1/audit/seals make one.
- Verification: `ledger audit verify [--seal-file F]` / GET /v1/audit/verification recompute
  the chain from the first event, check every seal's signature and hash, and name the first
  bad position.
- Provenance: `events()` / GET /v1/audit/events list the raw stream with position, recorded
  time, actor and masked data, so that every statement line traces back to its event.

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
  the database (`verify --seal-file`) shows that truncation. A new seal never vouches for rows
  that contradict an existing seal: sealing refuses to extend the chain over them.
- A replaced signing key is detected: seals must be signed by the deployment's current key,
  and seals kept outside carry the public key they were made with.

Seal cadence (封印频率): what happened since the last seal is unproven, so seal at least after
every business day and after every month-end close (月结), and keep each seal's JSON outside
the system (`ledger audit seal --append-to F` on another machine, or the response of POST
/v1/audit/seals stored by the auditors). Sealing is cheap: it chains only the events since the
previous seal.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteRecorder

from projections.audit_chain import ChainCheck, Problem, SealPoint, check_chain
from projections.audit_events import (
    decode,
    event_record,
    mentions,
    own_stream_ids,
    register_service_topics,
)
from projections.audit_seals import (
    load_signing_key,
    make_seal,
    public_key_text,
    read_seal_file,
    seal_fault,
)
from projections.audit_store import (
    AuditStore,
    ChainTip,
    PostgresAuditStore,
    SQLiteAuditStore,
)
from service.application import Ledger

MAX_EVENTS_LIMIT = 1000
SCAN_BATCH_EVENTS = 500
PUBLIC_SEAL_FIELDS = (
    "seal_id", "format", "position", "event_count", "chain_hash", "sealed_at", "algorithm",
    "public_key", "signature",
)


def open_audit_store(ledger: Ledger) -> AuditStore:
    recorder = ledger.recorder
    table = recorder.events_table_name  # type: ignore[attr-defined]
    if isinstance(recorder, SQLiteRecorder):  # by class, not module: see service/pg_recorder.py
        path = ledger.env.get("SQLITE_DBNAME") or ":memory:"
        if ":memory:" in path or "mode=memory" in path:
            raise ValueError("the audit trail needs a database file, not an in-memory SQLite")
        return SQLiteAuditStore(path, table)
    return PostgresAuditStore(ledger.settings.database_url, table)


def _seal_key(seal: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (seal.get("position"), seal.get("chain_hash"), seal.get("signature"))


class AuditTrail:
    """审计: seals, verification and provenance over one ledger's event store."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.settings = ledger.settings
        self.store = open_audit_store(ledger)
        self.store.ensure_tables()

    # --- provenance --------------------------------------------------------------------------

    def events(
        self, after: int = 0, limit: int = 100, organization_code: str | None = None,
        *, unmasked: bool = False,
    ) -> list[dict[str, Any]]:
        """The event stream after a position, in order, decoded and masked (personal data
        shown whole with `unmasked`: the caller records that reading).

        With organization_code: only events in that organisation's own streams (its record and
        its book) or whose data names the code anywhere (postings, counterparties, transfers,
        members joining it). Scans forward until `limit` such events or the end of the log.
        """
        if not isinstance(after, int) or after < 0:
            raise ValueError("after is a position, 0 or more")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError("limit is 1 or more")
        limit = min(limit, MAX_EVENTS_LIMIT)
        register_service_topics()
        own = own_stream_ids(organization_code) if organization_code else frozenset()
        found: list[dict[str, Any]] = []
        cursor = after
        batch = limit if organization_code is None else max(limit, SCAN_BATCH_EVENTS)
        while len(found) < limit:
            notifications = self.ledger.recorder.select_notifications(
                start=cursor, limit=batch, inclusive_of_start=False
            )
            if not notifications:
                break
            for notification in notifications:
                cursor = notification.id
                data, event, error = decode(self.ledger.mapper, notification)
                if organization_code is not None and not (
                    notification.originator_id in own or mentions(data, organization_code)
                ):
                    continue
                found.append(event_record(notification, data, event, error, unmasked=unmasked))
                if len(found) == limit:
                    break
        return found

    # --- seals -------------------------------------------------------------------------------

    def seal(self) -> dict[str, Any]:
        """Chains the events recorded since the last seal and signs the chain head."""
        key = load_signing_key(self.settings, create=True)
        assert key is not None  # create=True makes one
        self.store.extend_chain()

        def make(tip: ChainTip) -> dict[str, Any]:
            sealed_at = datetime.datetime.now(datetime.UTC).isoformat()
            return make_seal(key, position=tip.position, event_count=tip.ordinal,
                             chain_hash=tip.link, sealed_at=sealed_at)

        return self._public(self.store.insert_seal(make))

    def seals(self) -> list[dict[str, Any]]:
        return [self._public(seal) for seal in self.store.seals()]

    @staticmethod
    def _public(seal: dict[str, Any]) -> dict[str, Any]:
        return {name: seal[name] for name in PUBLIC_SEAL_FIELDS if name in seal}

    def public_key(self) -> str | None:
        key = load_signing_key(self.settings, create=False)
        return None if key is None else public_key_text(key)

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
        own_key = self.public_key()
        trusted = {own_key} if own_key else set()
        outside = read_seal_file(Path(seal_file)) if seal_file is not None else []
        seal_problems: list[Problem] = []
        with self.store.snapshot() as snapshot:
            points = self._seal_points(snapshot.seals, outside, trusted, seal_problems)
            head = snapshot.head_position
            progress = None if on_progress is None else (lambda p: on_progress(p, head))
            check = check_chain(snapshot.rows, snapshot.links, points, progress,
                                known_problems=seal_problems)
        return self._report(check, seals_checked=len(points) + len(seal_problems))

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
                    problems.append(Problem(position, "seal_invalid",
                                            f"seal at position {position} ({source}): {fault}"))
                    continue
                if source == "file" and key not in stored_keys:
                    problems.append(Problem(
                        position, "seal_missing",
                        f"the seal at position {position} kept outside is missing from the "
                        "store's audit_seals table (封印记录被删除)",
                    ))
                points.append(SealPoint(seal["position"], bytes.fromhex(seal["chain_hash"]),
                                        seal["event_count"], source))
        return points

    @staticmethod
    def _report(check: ChainCheck, *, seals_checked: int) -> dict[str, Any]:
        first = check.first_bad
        bound = first.position if first is not None and first.position is not None else None
        proven = [p for p in check.matched_seal_positions if bound is None or p < bound]
        verified_through = max(proven, default=0)
        if first is None:
            if seals_checked:
                reason = (
                    f"all {check.events_checked} events match the chain and {seals_checked} "
                    f"seals: proven unchanged through position {verified_through}"
                )
            else:
                reason = f"all {check.events_checked} events match the chain; no seal yet"
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
            "first_bad_position": bound,
            "reason": reason,
            "head_position": check.head_position,
            "events_checked": check.events_checked,
            "unsealed_events": check.unsealed_events,
            "problem_count": check.problem_count,
            "problems": [p.as_dict() for p in check.problems],
        }
